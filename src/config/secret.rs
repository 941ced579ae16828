//! Secrets read from files (passwords, the store key), held to one rule: a file others can read
//! is refused, and so is a configuration file that holds a password inline and others can read.

use std::path::Path;

use super::raw::RawConfig;
use super::{invalid, ConfigError};

/// A secret read from a file; `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(pub(super) String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

pub(super) fn read_secret(key: &str, path: &Path) -> Result<String, ConfigError> {
    if let Some(mode) = crate::fsutil::group_or_world_readable(path)
        .map_err(|e| invalid(key, format!("{}: {e}", path.display())))?
    {
        return Err(invalid(
            key,
            format!(
                "{} is readable by group or others (mode {mode:o}); chmod 600 it",
                path.display()
            ),
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(key, format!("{}: {e}", path.display())))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

/// Held to the same rule as password files: a password others can read is refused.
pub(super) fn inline_password_problem(path: &Path, raw: &RawConfig) -> Option<ConfigError> {
    let i = raw.accounts.iter().position(|a| a.password.is_some())?;
    let mode = crate::fsutil::group_or_world_readable(path).ok()??;
    Some(invalid(
        format!("accounts[{i}].password"),
        format!(
            "{} holds a password and is readable by group or others (mode {mode:o}); chmod 600 it, or move the password to password_file",
            path.display()
        ),
    ))
}
