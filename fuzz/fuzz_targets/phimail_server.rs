//! The sandbox HISP's side of the protocol fed arbitrary client bytes: commands, counted
//! payloads, acknowledgements out of order.
#![no_main]

use directd::sandbox::{session_over, SandboxConfig};
use libfuzzer_sys::fuzz_target;
use tokio::io::AsyncWriteExt;

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let config = SandboxConfig {
            accounts: vec![("a@x.example".into(), "pw".into()), ("b@x.example".into(), "pw".into())],
            ..Default::default()
        };
        let (server_end, mut client_end) = tokio::io::duplex(1 << 20);
        // Log in first so the fuzzer reaches the interesting commands.
        let mut input = b"AUTH a@x.example pw\n".to_vec();
        input.extend_from_slice(data);
        let _ = client_end.write_all(&input).await;
        let _ = client_end.shutdown().await;
        let session = session_over(server_end, &config);
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), session).await;
    });
});
