//! The imported provider directory: Direct addresses by NPI (see `crate::directory`).

use rusqlite::params;
use serde::Serialize;

use super::{now, Store, StoreError};
use crate::directory::Endpoint;

/// One Direct address the directory lists for an NPI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectoryEntry {
    pub npi: String,
    pub address: String,
    pub name: Option<String>,
    /// Where it came from: `nppes <file name>`.
    pub source: String,
    pub imported_at: String,
}

/// What an import changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DirectoryImport {
    pub replaced: usize,
    pub imported: usize,
    /// The same (NPI, address) listed twice in the file.
    pub duplicates: usize,
}

/// More matches than a person reads; a search that hits this many should be narrower.
const SEARCH_LIMIT: usize = 200;

impl Store {
    /// Replaces the imported directory with `entries`, in one transaction: a reader sees the
    /// old directory or the new one, never half of each.
    pub fn replace_directory(
        &mut self,
        source: &str,
        entries: &[Endpoint],
    ) -> Result<DirectoryImport, StoreError> {
        let at = now();
        self.write(|tx| {
            let replaced = tx.execute("DELETE FROM directory_entries", [])?;
            let mut insert = tx.prepare(
                "INSERT OR IGNORE INTO directory_entries (npi, address, name, source, imported_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let mut imported = 0;
            for e in entries {
                imported += insert.execute(params![e.npi, e.address, e.name, source, at])?;
            }
            Ok(DirectoryImport {
                replaced,
                imported,
                duplicates: entries.len() - imported,
            })
        })
    }

    /// The Direct addresses listed for `npi`.
    pub fn directory_for_npi(&self, npi: &str) -> Result<Vec<DirectoryEntry>, StoreError> {
        self.directory_query("WHERE npi = ?1 ORDER BY address", npi)
    }

    /// Entries whose NPI is `query`, or whose address or name contains it (case-insensitive).
    pub fn search_directory(&self, query: &str) -> Result<Vec<DirectoryEntry>, StoreError> {
        self.directory_query(
            "WHERE npi = ?1 OR instr(lower(address), lower(?1)) > 0 OR instr(lower(name), lower(?1)) > 0
             ORDER BY npi, address",
            query.trim(),
        )
    }

    fn directory_query(&self, filter: &str, arg: &str) -> Result<Vec<DirectoryEntry>, StoreError> {
        let sql = format!(
            "SELECT npi, address, name, source, imported_at FROM directory_entries {filter} LIMIT {SEARCH_LIMIT}"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([arg], |r| {
                Ok(DirectoryEntry {
                    npi: r.get(0)?,
                    address: r.get(1)?,
                    name: r.get(2)?,
                    source: r.get(3)?,
                    imported_at: r.get(4)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }
}
