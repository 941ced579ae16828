//! `directd sandbox`: the local phiMail-compatible HISP in the foreground.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{runtime, usage, CliError, CliResult};
use crate::sandbox::pki::TestPki;
use crate::sandbox::{Fault, Group, Sandbox, SandboxConfig};

#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  directd sandbox --account clinic-a@sandbox.local:secretA --account clinic-b@sandbox.local:secretB \\\n      --cert-dir ./sandbox-certs --fault SHOW:truncate:10"
)]
pub struct SandboxArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:32541")]
    listen: String,
    /// A local account as ADDRESS:PASSWORD (repeatable).
    #[arg(long, value_name = "ADDRESS:PASSWORD")]
    account: Vec<String>,
    /// An Address Group as LOGIN:PASSWORD:MEMBER[,MEMBER...] (repeatable).
    #[arg(long, value_name = "LOGIN:PASSWORD:MEMBERS")]
    group: Vec<String>,
    /// Where the generated test CA and server certificate are written (reused if present).
    #[arg(long, default_value = "sandbox-certs")]
    cert_dir: PathBuf,
    /// Seconds before an unconfirmed final-delivery request turns into STATUS failed.
    #[arg(long, default_value_t = 3600.0)]
    failed_after: f64,
    /// How a remote domain behaves: DOMAIN=confirm|fail|never (repeatable).
    #[arg(long, value_name = "DOMAIN=BEHAVIOUR")]
    remote: Vec<String>,
    /// Inject a fault: STEP:ACTION[:ARG][*TIMES], e.g. SHOW:truncate:10, SEND:fail:busy*3, ADD:reset (repeatable).
    #[arg(long, value_name = "SPEC")]
    fault: Vec<String>,
    /// Ask clients for a TLS certificate and verify it against this CA file (mutual TLS). The
    /// generated CA also issued `sandbox-client.pem`/`.key` in --cert-dir for clients to use.
    #[arg(long, value_name = "FILE")]
    client_ca: Option<PathBuf>,
    /// A login that may AUTH without a password when its connection presented a verified client
    /// certificate (a certificate-authenticated Address Group; repeatable).
    #[arg(long, value_name = "LOGIN", requires = "client_ca")]
    cert_login: Vec<String>,
    /// Accept CRLF line ends and lower-case command verbs, which production refuses.
    #[arg(long)]
    lenient: bool,
    /// A provider the directory (LOOKUP) lists, local or not: ADDRESS=NPI[:NAME] (repeatable).
    #[arg(long, value_name = "ADDRESS=NPI[:NAME]")]
    directory: Vec<String>,
}

fn split2<'a>(flag: &str, s: &'a str, sep: char) -> Result<(&'a str, &'a str), CliError> {
    s.split_once(sep).ok_or_else(|| {
        usage(format!(
            "{flag} {s:?}: expected two parts separated by {sep:?}"
        ))
    })
}

pub fn run(args: SandboxArgs) -> CliResult {
    let mut config = SandboxConfig {
        failed_after: Duration::from_secs_f64(args.failed_after.max(0.0)),
        lenient: args.lenient,
        cert_logins: args.cert_login.clone(),
        ..Default::default()
    };
    for a in &args.account {
        let (addr, pw) = split2("--account", a, ':')?;
        if !crate::address::is_valid(addr) {
            return Err(usage(format!("--account {addr:?} is not a valid address")));
        }
        config.accounts.push((addr.to_owned(), pw.to_owned()));
    }
    for g in &args.group {
        let mut it = g.splitn(3, ':');
        let (Some(login), Some(pw), Some(members)) = (it.next(), it.next(), it.next()) else {
            return Err(usage(format!(
                "--group {g:?}: expected LOGIN:PASSWORD:MEMBER[,MEMBER]"
            )));
        };
        config.groups.push(Group {
            login: login.into(),
            password: pw.into(),
            members: members.split(',').map(str::to_owned).collect(),
        });
    }
    for r in &args.remote {
        let (domain, behaviour) = split2("--remote", r, '=')?;
        config.remote.insert(
            domain.to_ascii_lowercase(),
            behaviour.parse().map_err(usage)?,
        );
    }
    for d in &args.directory {
        let (address, rest) = split2("--directory", d, '=')?;
        let (npi, name) = match rest.split_once(':') {
            Some((npi, name)) => (npi, Some(name.to_owned())),
            None => (rest, None),
        };
        if !crate::address::is_valid(address) {
            return Err(usage(format!(
                "--directory {address:?} is not a valid address"
            )));
        }
        let npi = crate::directory::check_npi(npi)
            .map_err(|e| usage(format!("--directory {d:?}: {e}")))?;
        config.directory.push(crate::sandbox::DirectoryListing {
            address: crate::address::normalize(address),
            npi: Some(npi.to_owned()),
            name,
        });
    }
    let faults = args
        .fault
        .iter()
        .map(|f| {
            f.parse::<Fault>()
                .map_err(|e| usage(format!("--fault {f:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if config.accounts.is_empty() && config.groups.is_empty() && config.cert_logins.is_empty() {
        return Err(usage("give at least one --account ADDRESS:PASSWORD"));
    }

    std::fs::create_dir_all(&args.cert_dir)?;
    let ca = args.cert_dir.join("sandbox-ca.pem");
    let cert = args.cert_dir.join("sandbox-server.pem");
    let key = args.cert_dir.join("sandbox-server.key");
    if !(ca.exists() && cert.exists() && key.exists()) {
        let host = args
            .listen
            .rsplit_once(':')
            .map(|(h, _)| h.trim_matches(['[', ']']))
            .unwrap_or("127.0.0.1");
        TestPki::generate(&[host, "localhost"])?.write_to(&args.cert_dir)?;
    }
    let tls = crate::tls::server_config_with_client_ca(
        crate::tls::load_certs(&cert)?,
        crate::tls::load_key(&key)?,
        args.client_ca.as_deref(),
    )?;

    let accounts = config.accounts.clone();
    runtime()?.block_on(async move {
        let sandbox = Sandbox::start(config, tls, &args.listen).await?;
        for f in faults {
            sandbox.inject_fault(f);
        }
        outln!(
            "sandbox HISP listening on {} (CA file: {})",
            sandbox.addr(),
            ca.display()
        );
        outln!("\n# directd configuration for these accounts (add [store]; keep the file 0600):");
        outln!(
            "[hisp]\nhost = {:?}\nport = {}\nca_file = {:?}",
            sandbox.addr().ip().to_string(),
            sandbox.addr().port(),
            ca
        );
        for (address, password) in &accounts {
            outln!("\n[[accounts]]\naddress = {address:?}\npassword = {password:?}");
        }
        tokio::signal::ctrl_c().await?;
        sandbox.shutdown().await;
        Ok::<_, CliError>(())
    })
}
