//! `directd users`: the web console's local users (add, disable, reset-password, reset-mfa,
//! list). Passwords are read from a file or standard input, never from the command line, where
//! other users of the machine could read them in the process list.

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::output::table;
use super::{usage, CliError, CliResult, Context};
use crate::store::web::Role;
use crate::web::auth;

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  printf '%s\\n' \"$PASSWORD\" | directd users add alice --role sender --account clinic@direct.example.org --password-stdin\n  directd users reset-mfa alice\n  directd users list"
)]
pub struct UsersArgs {
    #[command(subcommand)]
    command: UsersCommand,
}

#[derive(Args, Debug)]
struct PasswordSource {
    /// Read the password from this file (its first line).
    #[arg(long, value_name = "FILE", conflicts_with = "password_stdin")]
    password_file: Option<PathBuf>,
    /// Read the password from standard input (its first line).
    #[arg(long)]
    password_stdin: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum RoleArg {
    /// Reads the inbox, sent messages and documents of their accounts.
    Viewer,
    /// A viewer who may also send from their accounts.
    Sender,
    /// A sender who also sees the audit trail and the users.
    Admin,
}

#[derive(Subcommand, Debug)]
enum UsersCommand {
    /// Create a user; the second factor is enrolled at their first login.
    Add {
        /// Login name: letters, digits, '.', '-', '_' or '@'.
        name: String,
        /// What the user may do: viewer (read), sender (also send), admin (also audit and users).
        #[arg(long, value_enum)]
        role: RoleArg,
        /// A Direct account the user may see (repeatable).
        #[arg(long = "account", value_name = "ADDR", required = true)]
        accounts: Vec<String>,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Refuse the user's logins and end their sessions.
    Disable {
        /// The user's login name.
        name: String,
    },
    /// Set a new password and end the user's sessions.
    ResetPassword {
        /// The user's login name.
        name: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Forget the user's TOTP secret: they enrol a new one at their next login.
    ResetMfa {
        /// The user's login name.
        name: String,
    },
    /// List the users.
    List,
}

fn read_password(src: &PasswordSource) -> Result<String, CliError> {
    let text = match (&src.password_file, src.password_stdin) {
        (Some(path), _) => {
            std::fs::read_to_string(path).map_err(|e| usage(format!("{}: {e}", path.display())))?
        }
        (None, true) => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| usage(format!("standard input: {e}")))?;
            s
        }
        (None, false) => {
            return Err(usage(
                "give the password with --password-file FILE or --password-stdin",
            ))
        }
    };
    let password = text.lines().next().unwrap_or_default().to_owned();
    if password.chars().count() < auth::MIN_PASSWORD_LEN {
        return Err(usage(format!(
            "the password must have at least {} characters",
            auth::MIN_PASSWORD_LEN
        )));
    }
    Ok(password)
}

fn valid_name(name: &str) -> Result<(), CliError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'));
    if ok {
        Ok(())
    } else {
        Err(usage(format!(
            "user name {name:?}: use 1 to 64 letters, digits, '.', '-', '_' or '@'"
        )))
    }
}

pub fn run(ctx: &Context, args: UsersArgs) -> CliResult {
    let actor = crate::store::current_actor();
    let mut store = ctx.open_store(true)?;
    let changed = |found: bool, name: &str, what: &str| -> CliResult {
        if !found {
            return Err(usage(format!("no web user named {name}")));
        }
        outln!("{what} {name}");
        Ok(())
    };
    match args.command {
        UsersCommand::Add {
            name,
            role,
            accounts,
            password,
        } => {
            valid_name(&name)?;
            let mut normalized = Vec::new();
            for a in &accounts {
                let a = crate::address::normalize(a);
                if !crate::address::is_valid(&a) {
                    return Err(usage(format!(
                        "--account {a:?} is not a valid Direct address"
                    )));
                }
                normalized.push(a);
            }
            if store.web_user(&name)?.is_some() {
                return Err(usage(format!("a web user named {name} exists already")));
            }
            let hash = auth::hash_password(&read_password(&password)?)?;
            let role = match role {
                RoleArg::Viewer => Role::Viewer,
                RoleArg::Sender => Role::Sender,
                RoleArg::Admin => Role::Admin,
            };
            store.web_user_add(&actor, &name, role, &hash, &normalized)?;
            outln!(
                "added {name} ({}), accounts {}; the second factor is set up at the first login",
                role.as_str(),
                normalized.join(", ")
            );
            Ok(())
        }
        UsersCommand::Disable { name } => {
            let found =
                store.web_user_update(&actor, &name, "web user disable", "disabled = 1", None)?;
            changed(found, &name, "disabled")
        }
        UsersCommand::ResetPassword { name, password } => {
            let hash = auth::hash_password(&read_password(&password)?)?;
            let found = store.web_user_update(
                &actor,
                &name,
                "web user reset-password",
                "password_hash = ?2, disabled = 0",
                Some(&hash),
            )?;
            changed(found, &name, "new password for")
        }
        UsersCommand::ResetMfa { name } => {
            let found = store.web_user_update(
                &actor,
                &name,
                "web user reset-mfa",
                "totp_secret = NULL, totp_last_step = 0",
                None,
            )?;
            changed(found, &name, "second factor reset for")
        }
        UsersCommand::List => {
            let rows: Vec<Vec<String>> = store
                .web_users()?
                .into_iter()
                .map(|u| {
                    vec![
                        u.name,
                        u.role.as_str().into(),
                        u.accounts.join(","),
                        if u.totp_secret.is_some() {
                            "enrolled"
                        } else {
                            "at next login"
                        }
                        .into(),
                        if u.disabled { "disabled" } else { "active" }.into(),
                    ]
                })
                .collect();
            table(&["NAME", "ROLE", "ACCOUNTS", "MFA", "STATE"], &rows);
            Ok(())
        }
    }
}
