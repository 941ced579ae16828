//! `directd demo`: a real round trip through a throwaway sandbox HISP. Clinic A sends a sample
//! C-CDA to clinic B with final delivery requested; the daemon submits it, polls B, stores and
//! acknowledges the message, and records the `dispatched` status back at A. Exits 0 only if all of
//! that really happened.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;

use super::{runtime, CliError, CliResult, Context};
use crate::config::Config;
use crate::daemon::{Daemon, Shutdown};
use crate::hisp::{OutPart, OutRecipient, PartKind, RecipientKind};
use crate::sandbox::lab::Lab;
use crate::sandbox::SandboxConfig;
use crate::store::{NewOutgoing, Store};

const SAMPLE_CCDA: &[u8] = include_bytes!("../../samples/demo-ccd.xml");
const CLINIC_A: &str = "clinic-a@sandbox.local";
const CLINIC_B: &str = "clinic-b@sandbox.local";

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Keep the working files (certificates, store) in this directory instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

pub fn run(ctx: &Context, args: DemoArgs) -> CliResult {
    let tmp = tempfile::Builder::new().prefix("directd-demo-").tempdir()?;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| CliError::Failure(anyhow::anyhow!("{}: {e}", d.display())))?;
            d.clone()
        }
        None => tmp.path().to_owned(),
    };
    let store_path = ctx.db.clone().unwrap_or_else(|| dir.join("demo.db"));
    let started = Instant::now();
    runtime()?.block_on(async {
        let sandbox_config = SandboxConfig {
            accounts: vec![
                (CLINIC_A.into(), "demo-password-a".into()),
                (CLINIC_B.into(), "demo-password-b".into()),
            ],
            ..Default::default()
        };
        let lab = Lab::start(&dir, sandbox_config).await?;
        outln!(
            "sandbox HISP on {} with a fresh test CA ({})",
            lab.sandbox.addr(),
            lab.ca_file.display()
        );
        let toml = lab.daemon_toml(
            &store_path,
            &[(CLINIC_A, "demo-password-a"), (CLINIC_B, "demo-password-b")],
            "",
        );
        let config = Config::from_toml(&toml)?;

        let mut store = Store::open_config(&config.store, true)?;
        let id = store.enqueue(&NewOutgoing {
            account: Some(CLINIC_A.into()),
            sender: CLINIC_A.into(),
            recipients: vec![OutRecipient {
                address: CLINIC_B.into(),
                kind: RecipientKind::To,
            }],
            subject: Some("Demo referral".into()),
            final_delivery: true,
            parts: vec![
                OutPart {
                    kind: PartKind::Text,
                    filename: None,
                    data: b"Referral summary attached.".to_vec(),
                },
                OutPart {
                    kind: PartKind::Cda,
                    filename: Some("demo-ccd.xml".into()),
                    data: SAMPLE_CCDA.to_vec(),
                },
            ],
        })?;
        outln!("queued message {id}: {CLINIC_A} -> {CLINIC_B} (final delivery requested)");

        let (trigger, shutdown) = Shutdown::new();
        let daemon = Daemon::new(config, shutdown)?;
        let (_control, control_rx) = tokio::sync::mpsc::channel(1);
        let daemon_task = tokio::spawn(daemon.run(control_rx));

        let deadline = Instant::now() + Duration::from_secs(args.timeout);
        let received = loop {
            let dispatched = store
                .recipients(id)?
                .iter()
                .all(|r| r.state == "dispatched");
            let inbox = store.list_messages(false, true, None)?;
            if dispatched && !inbox.is_empty() {
                break inbox[0].id;
            }
            if Instant::now() > deadline || daemon_task.is_finished() {
                trigger.trigger();
                let _ = daemon_task.await;
                return Err(CliError::Failure(anyhow::anyhow!(
                    "round trip did not complete within {} s (recipient states: {:?})",
                    args.timeout,
                    store
                        .recipients(id)?
                        .iter()
                        .map(|r| r.state.clone())
                        .collect::<Vec<_>>()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // The daemon ingests right after the commit; give it the moment it needs.
        while store.incoming(received)?.attachments.iter().any(|a| a.ingest_state == "pending")
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        trigger.trigger();
        daemon_task.await.map_err(anyhow::Error::from)??;
        lab.sandbox.shutdown().await;

        let msg = store.incoming(received)?;
        let attachment = msg
            .attachments
            .iter()
            .find(|a| a.filename == "demo-ccd.xml");
        let intact = attachment.is_some_and(|a| a.sha256 == crate::store::sha256_hex(SAMPLE_CCDA));
        if !intact {
            return Err(CliError::Failure(anyhow::anyhow!(
                "the C-CDA received by {CLINIC_B} differs from the one sent"
            )));
        }
        outln!("\n== {CLINIC_A}: delivery history of message {id}");
        super::status::print_receipts(&store, Some(id), false)?;
        outln!("\n== {CLINIC_B}: received message {received}");
        super::show::print_message(
            &store,
            super::show::ShowArgs {
                id: received,
                save: None,
                json: false,
                mark_read: false,
                raw: None,
            },
        )?;
        let documents = store.list_documents(None)?;
        outln!("\n== clinical documents ingested from it");
        for d in &documents {
            outln!(
                "document {}: {} ({}), patient {}",
                d.id,
                d.title.as_deref().unwrap_or("-"),
                d.kind,
                d.patient_name.as_deref().unwrap_or("-")
            );
        }
        if documents.is_empty() {
            return Err(CliError::Failure(anyhow::anyhow!("the received C-CDA was not ingested")));
        }
        outln!(
            "\nround trip complete in {:.1} s; the C-CDA arrived byte-identical (sha256 verified) and was ingested",
            started.elapsed().as_secs_f64()
        );
        if args.dir.is_some() {
            // A configuration beside the store, so the next command is the README's own.
            let config_path = dir.join("directd.toml");
            crate::fsutil::write_private(&config_path, toml.as_bytes())?;
            outln!(
                "files kept in {} (store: {})\ncontinue with: directd --config {} messages",
                dir.display(),
                store_path.display(),
                config_path.display()
            );
        }
        Ok(())
    })
}
