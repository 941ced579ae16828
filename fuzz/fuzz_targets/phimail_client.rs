//! The phiMail client reading whatever a hostile or broken HISP sends: CHECK/SHOW parsing,
//! length lines, payload bounds. It must return errors, never panic or allocate what the peer
//! announces.
#![no_main]

use std::io::Cursor;
use std::time::Duration;

use directd::hisp::phimail::PhiMailClient;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        // The "server" says exactly `data` and then closes; what the client writes is discarded.
        let stream = tokio::io::join(Cursor::new(data.to_vec()), tokio::io::sink());
        let mut client = PhiMailClient::over(stream, Duration::from_millis(20), 64 * 1024);
        for _ in 0..8 {
            match client.check().await {
                Ok(Some(_)) => continue,
                _ => break,
            }
        }
        let _ = client.lookup("(mail=x)").await;
    });
});
