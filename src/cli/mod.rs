//! The command line: argument parsing, one file per subcommand, human and `--json` output.
//! Exit codes: 0 ok, 1 operational failure, 2 usage error; `status` adds 3 (a recipient failed)
//! and 4 (still pending when `--wait` timed out).

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
mod backup;
pub(crate) mod ccda;
mod certs;
mod config_check;
mod demo;
mod directory;
mod ingest;
mod inspect;
mod logging;
mod messages;
mod output;
mod patients;
mod poll;
mod reject;
mod run;
mod sandbox;
mod schema;
mod send;
pub(crate) mod show;
mod status;
mod users;
mod web;

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
    after_help = "Examples:\n  directd demo                                   round trip through a throwaway sandbox HISP\n  directd send --from a@direct.example.org --to b@direct.other.org --final --ccda summary.xml\n  directd status 12 --wait --timeout 10m\n  directd poll\n  directd messages --state failed --since 7d\n  directd ccda list --patient Quux\n  directd --config /etc/directd/directd.toml config check --connect"
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
    Send(Box<send::SendArgs>),
    /// Delivery outcome of an outgoing message, per recipient; `--wait` waits for the outcome.
    Status(status::StatusArgs),
    /// Delivery event history (all outgoing messages, or one); `--follow` streams new events.
    Receipts(status::ReceiptsArgs),
    /// Ask the running daemon to poll every account now, and wait for the result.
    Poll(poll::PollArgs),
    /// List messages.
    Messages(messages::MessagesArgs),
    /// Show one received message and its attachments.
    Show(show::ShowArgs),
    /// Refuse a received message: quarantine it and owe its sender a failed MDN (audited).
    Reject(reject::RejectArgs),
    /// Run the local phiMail-compatible sandbox HISP in the foreground.
    Sandbox(sandbox::SandboxArgs),
    /// Round trip through a throwaway sandbox: send a C-CDA from one account to another.
    Demo(demo::DemoArgs),
    /// Ingest C-CDA files, XDM zips or folders from disk into the clinical tables.
    Ingest(ingest::IngestArgs),
    /// Query ingested clinical documents (`ccda list`, `ccda show ID`).
    Ccda(ccda::CcdaArgs),
    /// Patients across documents: persons, their records, link review (`list`, `show`, `link`).
    Patients(patients::PatientsArgs),
    /// Find a provider's Direct address by NPI or name (HISP directory, imported NPPES file).
    Directory(directory::DirectoryArgs),
    /// Decrypt and verify a saved S/MIME message and print the verdict and its parts.
    Inspect(inspect::InspectArgs),
    /// Certificate tools (`certs check`, `certs publish`).
    Certs(certs::CertsArgs),
    /// The audit trail: who sent, received, viewed or exported which message, when.
    Audit(audit::AuditArgs),
    /// Copy the store consistently while the daemon runs (SQLite backup; stays encrypted).
    Backup(backup::BackupArgs),
    /// Apply the [retention] policy now (a dry run unless --apply).
    Purge(backup::PurgeArgs),
    /// The web console's users (`users add NAME --role ROLE --account ADDR`, `disable`,
    /// `reset-password`, `reset-mfa`, `list`).
    Users(users::UsersArgs),
    /// Run the web console (inbox, documents, sending) over HTTPS, in the foreground.
    Web,
    /// Configuration tools (`config check`).
    Config(config_check::ConfigArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell to write the completion script for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on standard output, or write every page to a directory.
    Man {
        /// Write directd.1 and one page per subcommand (directd-send.1, directd-ccda-list.1...)
        /// into this directory, so the pages the main page refers to exist.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// A command's failure: bad input from the user (exit 2), something that went wrong (exit 1), or
/// an outcome the command has already reported and that its exit status must carry (`status`).
#[derive(Debug)]
pub enum CliError {
    Usage(String),
    Failure(anyhow::Error),
    Exit(u8),
}

/// `status`: some recipient failed or timed out.
pub const EXIT_FAILED: u8 = 3;
/// `status --wait`: the `--timeout` ran out while some recipient was still pending.
pub const EXIT_PENDING: u8 = 4;

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
        self.config_with(Config::load)
    }

    /// Every problem with the configuration (for `config check`), or the configuration.
    pub fn check_config(&self) -> Result<Config, Vec<crate::config::ConfigError>> {
        let (path, required) = match &self.config_path {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
        };
        let mut config = Config::check(&path, required)?;
        if let Some(db) = &self.db {
            config.store.path = db.clone();
        }
        Ok(config)
    }

    /// The configuration for commands that only describe accounts (which transport, which
    /// addresses): no secrets, and with `--db` an unreadable default file is no configuration.
    pub fn listing_config(&self) -> Result<Config, CliError> {
        match self.config_without_secrets() {
            Err(_) if self.db.is_some() && self.config_path.is_none() => {
                let mut config = Config::from_toml("").map_err(|e| CliError::Failure(e.into()))?;
                config.store.path = self.db.clone().unwrap_or_default();
                Ok(config)
            }
            other => other,
        }
    }

    /// The configuration without the accounts' password files (for commands that only queue).
    pub fn config_without_secrets(&self) -> Result<Config, CliError> {
        self.config_with(Config::load_without_secrets)
    }

    fn config_with(
        &self,
        load: fn(&std::path::Path, bool) -> Result<Config, crate::config::ConfigError>,
    ) -> Result<Config, CliError> {
        let (path, required) = match &self.config_path {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
        };
        let mut config = load(&path, required).map_err(|e| CliError::Failure(e.into()))?;
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
                CliError::Exit(code) => anyhow::anyhow!("exit status {code}"),
            })
        }
    }

    /// Opens the store for a command that works on it alone: only the configuration's `[store]`
    /// section is read (no account secrets), and with `--db` a default configuration file this
    /// user cannot read is not needed at all.
    /// The configuration file in use, and whether it must exist (named explicitly).
    pub fn config_file(&self) -> PathBuf {
        self.config_path
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
    }

    pub fn config_required(&self) -> bool {
        self.config_path.is_some()
    }

    pub fn open_store(&self, create: bool) -> Result<crate::store::Store, CliError> {
        let (path, required) = match &self.config_path {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
        };
        let mut settings = match Config::load_store(&path, required) {
            Ok(s) => s,
            Err(_) if self.db.is_some() && !required => crate::config::StoreConfig::default(),
            Err(e) => return Err(CliError::Failure(e.into())),
        };
        if let Some(db) = &self.db {
            settings.path = db.clone();
        }
        let store = crate::store::Store::open_config(&settings, create);
        Ok(store.map_err(anyhow::Error::from)?)
    }
}

fn init_logging(verbose: u8, format: LogFormat, default_level: &str) {
    use std::io::IsTerminal;
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
    // Colour only for a person at a terminal who has not asked for none.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text if logging::stderr_is_journal() => builder
            .with_ansi(false)
            .event_format(logging::JournalPrefix::default())
            .try_init(),
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
    };
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let long_running = matches!(
        cli.command,
        Command::Run | Command::Web | Command::Sandbox(_) | Command::Demo(_)
    );
    init_logging(
        cli.verbose,
        cli.log_format,
        if long_running { "info" } else { "warn" },
    );
    if long_running {
        output::keep_running_without_stdout();
    }
    let ctx = Context {
        config_path: cli.config,
        db: cli.db,
    };
    let result = match cli.command {
        Command::Run => run::run(&ctx),
        Command::Send(a) => send::run(&ctx, *a),
        Command::Status(a) => status::status(&ctx, a),
        Command::Receipts(a) => status::receipts(&ctx, a),
        Command::Poll(a) => poll::run(&ctx, a),
        Command::Messages(a) => messages::run(&ctx, a),
        Command::Show(a) => show::run(&ctx, a),
        Command::Reject(a) => reject::run(&ctx, a),
        Command::Sandbox(a) => sandbox::run(a),
        Command::Demo(a) => demo::run(&ctx, a),
        Command::Audit(a) => audit::run(&ctx, a),
        Command::Backup(a) => backup::backup(&ctx, a),
        Command::Purge(a) => backup::purge(&ctx, a),
        Command::Inspect(a) => inspect::run(&ctx, a),
        Command::Certs(a) => certs::run(&ctx, a),
        Command::Ingest(a) => ingest::run(&ctx, a),
        Command::Ccda(a) => ccda::run(&ctx, a),
        Command::Patients(a) => patients::run(&ctx, a),
        Command::Directory(a) => directory::run(&ctx, a),
        Command::Config(a) => config_check::run(&ctx, a),
        Command::Users(a) => users::run(&ctx, a),
        Command::Web => web::run(&ctx),
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
        Command::Man { dir: Some(dir) } => {
            use clap::CommandFactory;
            std::fs::create_dir_all(&dir)
                .and_then(|()| clap_mangen::generate_to(Cli::command(), &dir))
                .map_err(|e| CliError::Failure(anyhow::anyhow!("{}: {e}", dir.display())))
        }
        Command::Man { dir: None } => {
            use clap::CommandFactory;
            // No `help` subcommand in the page: it would point to a directd-help(1) that no
            // page set has (`man --dir` writes the others).
            clap_mangen::Man::new(Cli::command().disable_help_subcommand(true))
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
        Err(CliError::Exit(code)) => ExitCode::from(code),
    }
}

/// Parses a duration: `90` or `90s`, `10m`, `2h`, `1d`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 'h')) => (&s[..i], 3600),
        Some((i, 'd')) => (&s[..i], 86_400),
        _ => (s, 1),
    };
    digits
        .parse::<u64>()
        .map(|n| std::time::Duration::from_secs(n.saturating_mul(mult)))
        .map_err(|_| format!("{s:?}: expected a duration like 30s, 10m or 2h"))
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
    fn durations_take_a_unit() {
        use std::time::Duration;
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    /// Every subcommand and every option says what it is for in `--help`.
    #[test]
    fn every_option_has_help_text() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(format!("{path} {} (subcommand)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        let mut cmd = Cli::command();
        cmd.build();
        walk(&cmd, "directd", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }
}
