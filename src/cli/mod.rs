//! The command line: argument parsing, one file per subcommand, human and `--json` output.
//! Exit codes: 0 ok, 1 operational failure, 2 usage error.

/// `println!` for command output: goes through [`output::write_out`], which escapes control
/// characters from stored data and ends the command quietly when stdout is a closed pipe.
macro_rules! outln {
    () => {
        $crate::cli::output::write_out("\n")
    };
    ($($arg:tt)*) => {
        $crate::cli::output::write_out(&format!("{}\n", format_args!($($arg)*)))
    };
}

mod audit;
mod ccda;
mod certs;
mod config_check;
mod demo;
mod ingest;
mod inspect;
mod messages;
mod output;
mod run;
mod sandbox;
mod send;
mod show;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, DEFAULT_CONFIG_PATH};

#[derive(Parser, Debug)]
#[command(
    name = "directd",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("DIRECTD_BUILD_INFO"), ")"),
    about = "Direct Secure Messaging daemon and command line",
    long_about = "Direct Secure Messaging daemon and command line.\n\nThe daemon (`directd run`) polls each configured HISP account, sends what `directd send` queued, records per-recipient delivery status and receipts, and ingests received C-CDA documents. Every other command works on the same SQLite store.",
    after_help = "Examples:\n  directd demo                                   round trip through a throwaway sandbox HISP\n  directd send --from a@direct.example.org --to b@direct.other.org --final --ccda summary.xml\n  directd status 12 --json\n  directd messages --in --since 2d\n  directd ccda list --patient Quux\n  directd --config /etc/directd/directd.toml config check --connect"
)]
pub struct Cli {
    /// Configuration file (TOML). DIRECTD_* environment variables override it.
    #[arg(long, global = true, value_name = "FILE", env = "DIRECTD_CONFIG")]
    config: Option<PathBuf>,
    /// Store (SQLite file) to use instead of the configured one.
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,
    /// More log output (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon: poll every account, send the outbox, record receipts (what systemd starts).
    Run,
    /// Queue a message for the daemon to send; prints the local message id.
    Send(send::SendArgs),
    /// Per-recipient delivery state of an outgoing message.
    Status(status::StatusArgs),
    /// Delivery event history (all outgoing messages, or one).
    Receipts(status::ReceiptsArgs),
    /// List messages.
    Messages(messages::MessagesArgs),
    /// Show one received message and its attachments.
    Show(show::ShowArgs),
    /// Run the local phiMail-compatible sandbox HISP in the foreground.
    Sandbox(sandbox::SandboxArgs),
    /// Round trip through a throwaway sandbox: send a C-CDA from one account to another.
    Demo(demo::DemoArgs),
    /// Ingest C-CDA files, XDM zips or folders from disk into the clinical tables.
    Ingest(ingest::IngestArgs),
    /// Query ingested clinical documents (`ccda list`, `ccda show ID`).
    Ccda(ccda::CcdaArgs),
    /// Decrypt and verify a saved S/MIME message and print the verdict and its parts.
    Inspect(inspect::InspectArgs),
    /// Certificate tools (`certs check`, `certs publish`).
    Certs(certs::CertsArgs),
    /// The audit trail: who sent, received, viewed or exported which message, when.
    Audit(audit::AuditArgs),
    /// Configuration tools (`config check`).
    Config(config_check::ConfigArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on standard output.
    Man,
}

/// A command's failure: bad input from the user (exit 2) or something that went wrong (exit 1).
#[derive(Debug)]
pub enum CliError {
    Usage(String),
    Failure(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError::Failure(e.into())
    }
}

pub type CliResult = Result<(), CliError>;

pub fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

/// What every subcommand gets: the parsed global options and a lazily loaded configuration.
pub struct Context {
    config_path: Option<PathBuf>,
    db: Option<PathBuf>,
}

impl Context {
    /// Loads the configuration; an explicitly named file must exist, the default one may not.
    pub fn config(&self) -> Result<Config, CliError> {
        let (path, required) = match &self.config_path {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
        };
        let mut config = Config::load(&path, required).map_err(|e| CliError::Failure(e.into()))?;
        if let Some(db) = &self.db {
            config.store.path = db.clone();
        }
        Ok(config)
    }

    /// A closure that re-reads the configuration the same way, for SIGHUP.
    pub fn reloader(&self) -> impl Fn() -> Result<Config, anyhow::Error> + Send + 'static {
        let ctx = Context {
            config_path: self.config_path.clone(),
            db: self.db.clone(),
        };
        move || {
            ctx.config().map_err(|e| match e {
                CliError::Usage(m) => anyhow::anyhow!(m),
                CliError::Failure(e) => e,
            })
        }
    }

    pub fn open_store(&self, create: bool) -> Result<crate::store::Store, CliError> {
        let config = self.config()?;
        let store = crate::store::Store::open_config(&config.store, create);
        Ok(store.map_err(anyhow::Error::from)?)
    }
}

fn init_logging(verbose: u8, format: LogFormat, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let level = match verbose {
        0 => default_level,
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let long_running = matches!(
        cli.command,
        Command::Run | Command::Sandbox(_) | Command::Demo(_)
    );
    init_logging(
        cli.verbose,
        cli.log_format,
        if long_running { "info" } else { "warn" },
    );
    let ctx = Context {
        config_path: cli.config,
        db: cli.db,
    };
    let result = match cli.command {
        Command::Run => run::run(&ctx),
        Command::Send(a) => send::run(&ctx, a),
        Command::Status(a) => status::status(&ctx, a),
        Command::Receipts(a) => status::receipts(&ctx, a),
        Command::Messages(a) => messages::run(&ctx, a),
        Command::Show(a) => show::run(&ctx, a),
        Command::Sandbox(a) => sandbox::run(a),
        Command::Demo(a) => demo::run(&ctx, a),
        Command::Audit(a) => audit::run(&ctx, a),
        Command::Inspect(a) => inspect::run(&ctx, a),
        Command::Certs(a) => certs::run(&ctx, a),
        Command::Ingest(a) => ingest::run(&ctx, a),
        Command::Ccda(a) => ccda::run(&ctx, a),
        Command::Config(a) => config_check::run(&ctx, a),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "directd",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Man => {
            use clap::CommandFactory;
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(CliError::from)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(msg)) => {
            eprintln!("directd: {msg}");
            ExitCode::from(2)
        }
        Err(CliError::Failure(e)) => {
            eprintln!("directd: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// A tokio runtime for the commands that need the network.
fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Parses `--since`: an RFC 3339 date or time prefix (`2026-11-25`, `2026-11-25T10:00:00Z`) or a
/// relative age (`90m`, `2h`, `7d`).
pub fn parse_since(s: &str) -> Result<String, CliError> {
    let s = s.trim();
    let unit = |c: char| match c {
        's' => Some(1),
        'm' => Some(60),
        'h' => Some(3600),
        'd' => Some(86_400),
        _ => None,
    };
    if let Some(last) = s.chars().last() {
        if let (Some(mult), Ok(n)) = (unit(last), s[..s.len() - 1].parse::<u64>()) {
            let ago = std::time::Duration::from_secs(n.saturating_mul(mult));
            let t = std::time::SystemTime::now()
                .checked_sub(ago)
                .unwrap_or(std::time::UNIX_EPOCH);
            return Ok(crate::timefmt::rfc3339(t));
        }
    }
    let b = s.as_bytes();
    let date_ok = b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit);
    if date_ok {
        Ok(s.to_owned())
    } else {
        Err(usage(format!("--since {s:?}: expected a date like 2026-11-25, a time like 2026-11-25T10:00:00Z, or an age like 2h or 7d")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_dates_and_ages() {
        assert_eq!(parse_since("2026-11-25").unwrap(), "2026-11-25");
        assert!(parse_since("2h").unwrap() < crate::timefmt::rfc3339(std::time::SystemTime::now()));
        assert!(matches!(parse_since("yesterday"), Err(CliError::Usage(_))));
        assert!(matches!(parse_since("2x"), Err(CliError::Usage(_))));
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
