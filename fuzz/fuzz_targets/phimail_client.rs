//! The phiMail client reading whatever a hostile or broken HISP sends: CHECK/SHOW parsing,
//! length lines, payload bounds. It must return errors, never panic or allocate what the peer
//! announces.
#![no_main]

use std::time::Duration;

use directd::hisp::phimail::PhiMailClient;
use libfuzzer_sys::fuzz_target;
use tokio::io::AsyncWriteExt;

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (client_end, mut server_end) = tokio::io::duplex(1 << 20);
        let _ = server_end.write_all(data).await;
        // The server says nothing more; the client's own writes land in the duplex buffer.
        let mut client = PhiMailClient::over(client_end, Duration::from_millis(20), 64 * 1024);
        for _ in 0..8 {
            match client.check().await {
                Ok(Some(_)) => continue,
                _ => break,
            }
        }
        let _ = client.lookup("(mail=x)").await;
        drop(server_end);
    });
});
