//! `directd directory search|import`: finding a provider's Direct address, in the HISP's
//! directory (phiMail `LOOKUP`) and in an imported NPPES endpoint file; and the NPI resolution
//! `send --to-npi` uses.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use super::output::{json, opt, table};
use super::schema::versioned;
use super::{runtime, usage, CliError, CliResult, Context};
use crate::config::{Account, Config};
use crate::hisp::phimail::PhiMailClient;

#[derive(Args, Debug)]
pub struct DirectoryArgs {
    #[command(subcommand)]
    command: DirectoryCommand,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Source {
    /// The imported NPPES file and the HISP's directory.
    All,
    /// The imported NPPES file only (no network).
    Local,
    /// The HISP's directory only.
    Hisp,
}

#[derive(Subcommand, Debug)]
enum DirectoryCommand {
    /// Find Direct addresses by NPI, address or name.
    #[command(
        after_help = "QUERY is an NPI (10 digits), a Direct address, or part of a name. The HISP is asked with an LDAP filter built from it — (npi=…), (mail=…) or (cn=*…*) — or with QUERY itself when it starts with '('.\n\nExamples:\n  directd directory search 1234567893\n  directd directory search 'Example Lab' --source hisp\n  directd directory search '(mail=*@direct.example.org)'"
    )]
    Search {
        /// NPI, Direct address, name (part), or an LDAP filter for the HISP.
        query: String,
        /// Which directory to ask.
        #[arg(long, value_enum, default_value_t = Source::All)]
        source: Source,
        /// The phiMail account whose HISP to ask (default: the first phiMail account).
        #[arg(long, value_name = "ADDR")]
        account: Option<String>,
        /// Print JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Import a CMS NPPES endpoint file (endpoint_pfile_*.csv): its Direct addresses by NPI
    /// replace the previously imported ones.
    Import {
        /// The endpoint CSV file from the NPPES data dissemination download.
        file: PathBuf,
        /// Print JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// One answer of a directory, whichever answered.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Listing {
    /// `nppes` (the imported file) or `hisp` (the HISP's directory).
    pub source: &'static str,
    pub npi: Option<String>,
    pub address: String,
    pub name: Option<String>,
}

#[derive(Serialize)]
struct SearchDoc {
    results: Vec<Listing>,
    /// A directory that could not be asked, and why.
    errors: Vec<String>,
}

#[derive(Serialize)]
struct ImportDoc {
    file: String,
    imported: usize,
    npis: usize,
    replaced: usize,
    duplicates: usize,
    skipped_other_types: u64,
    skipped_bad_npi: u64,
    skipped_bad_address: u64,
}

pub fn run(ctx: &Context, args: DirectoryArgs) -> CliResult {
    match args.command {
        DirectoryCommand::Import {
            file,
            json: as_json,
        } => import(ctx, &file, as_json),
        DirectoryCommand::Search {
            query,
            source,
            account,
            json: as_json,
        } => search(ctx, &query, source, account.as_deref(), as_json),
    }
}

fn import(ctx: &Context, file: &std::path::Path, as_json: bool) -> CliResult {
    let input = std::fs::File::open(file).map_err(|e| usage(format!("{}: {e}", file.display())))?;
    let mut reader = crate::directory::NppesEndpoints::new(std::io::BufReader::new(input))
        .map_err(|e| usage(format!("{}: {e}", file.display())))?;
    let mut entries = Vec::new();
    while let Some(e) = reader
        .next_endpoint()
        .map_err(|e| usage(format!("{}: {e}", file.display())))?
    {
        entries.push(e);
    }
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut store = ctx.open_store(true)?;
    let done = store.replace_directory(&format!("nppes {name}"), &entries)?;
    let npis = entries
        .iter()
        .map(|e| e.npi.as_str())
        .collect::<std::collections::HashSet<_>>()
        .len();
    let skipped = &reader.skipped;
    store.audit(
        &crate::store::current_actor(),
        "directory import",
        None,
        Some(&format!(
            "{name}: {} Direct address(es) for {npis} NPI(s), {} replaced",
            done.imported, done.replaced
        )),
    )?;
    if as_json {
        return json(&versioned(ImportDoc {
            file: name,
            imported: done.imported,
            npis,
            replaced: done.replaced,
            duplicates: done.duplicates,
            skipped_other_types: skipped.other_types,
            skipped_bad_npi: skipped.bad_npi,
            skipped_bad_address: skipped.bad_address,
        }));
    }
    outln!(
        "imported {} Direct address(es) for {npis} NPI(s) from {name}, replacing {}",
        done.imported,
        done.replaced
    );
    outln!(
        "skipped: {} other endpoint type(s), {} invalid NPI(s), {} invalid address(es), {} duplicate(s)",
        skipped.other_types,
        skipped.bad_npi,
        skipped.bad_address,
        done.duplicates
    );
    Ok(())
}

/// The LDAP filter the HISP is asked with for `query`.
fn hisp_filter(query: &str) -> String {
    let q = query.trim();
    // RFC 4515 escapes, so a name cannot change the filter's shape.
    let escaped: String = q
        .chars()
        .map(|c| match c {
            '*' => "\\2a".to_string(),
            '(' => "\\28".to_string(),
            ')' => "\\29".to_string(),
            '\\' => "\\5c".to_string(),
            c => c.to_string(),
        })
        .collect();
    if q.starts_with('(') {
        q.to_string()
    } else if crate::directory::is_npi(q) {
        format!("(npi={q})")
    } else if q.contains('@') {
        format!("(mail={escaped})")
    } else {
        format!("(cn=*{escaped}*)")
    }
}

/// The phiMail account to ask: the one named, or the first.
fn directory_account<'a>(config: &'a Config, name: Option<&str>) -> Result<&'a Account, String> {
    let mut phimail = config.accounts.iter().filter(|a| a.edge.is_none());
    match name {
        Some(n) => {
            let n = crate::address::normalize(n);
            phimail
                .find(|a| a.address == n || a.addresses.contains(&n))
                .ok_or_else(|| format!("no phiMail account {n} is configured"))
        }
        None => phimail.next().ok_or_else(|| {
            "no phiMail account is configured, so there is no HISP directory to ask".to_string()
        }),
    }
}

/// Asks the HISP's directory (phiMail `LOOKUP JSON`) with `filter`.
pub fn hisp_lookup(account: &Account, filter: &str) -> Result<Vec<Listing>, String> {
    let found = runtime()
        .map_err(|e| format!("{e:?}"))?
        .block_on(async {
            let mut client = PhiMailClient::connect(&account.connect).await?;
            let found = client.lookup(filter).await;
            client.close().await;
            found
        })
        .map_err(|e| format!("HISP directory of {}: {e}", account.address))?;
    Ok(found
        .iter()
        .filter_map(|v| {
            let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
            Some(Listing {
                source: "hisp",
                npi: field("npi"),
                address: crate::address::normalize(&field("mail")?),
                name: field("cn"),
            })
        })
        .collect())
}

fn search(
    ctx: &Context,
    query: &str,
    source: Source,
    account: Option<&str>,
    as_json: bool,
) -> CliResult {
    let mut results = Vec::new();
    let mut errors = Vec::new();
    if source != Source::Hisp {
        match ctx.open_store(false) {
            Ok(store) => {
                results.extend(store.search_directory(query)?.into_iter().map(|e| Listing {
                    source: "nppes",
                    npi: Some(e.npi),
                    address: e.address,
                    name: e.name,
                }))
            }
            // No store yet means nothing was imported: an empty local directory, not an error,
            // when the HISP is asked as well.
            Err(CliError::Failure(e))
                if source == Source::All
                    && matches!(
                        e.downcast_ref::<crate::store::StoreError>(),
                        Some(crate::store::StoreError::Missing { .. })
                    ) => {}
            Err(e) => return Err(e),
        }
    }
    if source != Source::Local {
        // Only the HISP search reads the account's password.
        let config = ctx.config()?;
        match directory_account(&config, account).and_then(|a| hisp_lookup(a, &hisp_filter(query)))
        {
            Ok(found) => results.extend(found),
            Err(e) => errors.push(e),
        }
    }
    if as_json {
        json(&versioned(SearchDoc {
            results,
            errors: errors.clone(),
        }))?;
    } else {
        let rows: Vec<Vec<String>> = results
            .iter()
            .map(|l| {
                vec![
                    l.source.to_string(),
                    opt(&l.npi),
                    l.address.clone(),
                    opt(&l.name),
                ]
            })
            .collect();
        if rows.is_empty() {
            outln!("no directory entry matches {query:?}");
        } else {
            table(&["SOURCE", "NPI", "ADDRESS", "NAME"], &rows);
        }
        for e in &errors {
            eprintln!("directd: {e}");
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failure(anyhow::anyhow!(
            "{} directory could not be asked",
            errors.len()
        )))
    }
}

/// The Direct address for `npi`, and how it was found (recorded with the message): the
/// imported NPPES file first, then the HISP's directory. More than one address is refused
/// rather than guessed: the sender picks one with `--to`.
pub fn resolve_npi(
    ctx: &Context,
    store: &crate::store::Store,
    account: &Account,
    npi: &str,
) -> Result<(String, String), CliError> {
    let npi = crate::directory::check_npi(npi).map_err(|e| usage(format!("--to-npi: {e}")))?;
    let pick =
        |found: Vec<(String, String)>, from: &str| -> Result<Option<(String, String)>, CliError> {
            match found.as_slice() {
                [] => Ok(None),
                [(address, source)] => Ok(Some((
                    address.clone(),
                    format!("address of NPI {npi} from {source}"),
                ))),
                many => {
                    Err(usage(format!(
                "--to-npi {npi}: {from} lists {} Direct addresses ({}); choose one with --to",
                many.len(),
                many.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>().join(", ")
            )))
                }
            }
        };
    let local = store
        .directory_for_npi(npi)?
        .into_iter()
        .map(|e| (e.address, format!("the imported directory ({})", e.source)))
        .collect();
    if let Some(found) = pick(local, "the imported directory")? {
        return Ok(found);
    }
    if account.edge.is_some() {
        return Err(usage(format!(
            "--to-npi {npi}: no Direct address for this NPI in the imported directory (directd directory import FILE), and edge accounts have no HISP directory to ask"
        )));
    }
    // The HISP is asked only now, so sending by a known NPI needs no password.
    let config = ctx.config()?;
    let account = config
        .account_for(&account.address)
        .ok_or_else(|| usage(format!("no account {}", account.address)))?;
    let hisp = hisp_lookup(account, &format!("(npi={npi})"))
        .map_err(|e| CliError::Failure(anyhow::anyhow!("--to-npi {npi}: {e}")))?
        .into_iter()
        .filter(|l| l.npi.as_deref() == Some(npi))
        .map(|l| {
            (
                l.address,
                format!("the HISP directory of {}", account.address),
            )
        })
        .collect();
    pick(hisp, "the HISP directory")?.ok_or_else(|| {
        usage(format!(
            "--to-npi {npi}: no Direct address for this NPI in the imported directory or the HISP directory of {}",
            account.address
        ))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn filters_for_npi_address_name_and_raw() {
        use super::hisp_filter;
        assert_eq!(hisp_filter("1234567893"), "(npi=1234567893)");
        assert_eq!(hisp_filter("a@b.org"), "(mail=a@b.org)");
        assert_eq!(hisp_filter(" Example Lab "), "(cn=*Example Lab*)");
        assert_eq!(hisp_filter("a*)(x=y"), "(cn=*a\\2a\\29\\28x=y*)");
        assert_eq!(hisp_filter("(mail=*@x.org)"), "(mail=*@x.org)");
    }
}
