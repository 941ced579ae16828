//! Finding a provider's Direct address by NPI: the NPI check digit, and the CMS NPPES "endpoint"
//! file (`endpoint_pfile_*.csv`), which lists each provider's electronic endpoints, Direct
//! addresses among them. Reading only; the store keeps what was imported (`store/directory.rs`)
//! and the CLI asks it and the HISP's directory (`cli/directory.rs`).

use std::io::Read;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum DirectoryError {
    #[error("{0:?} is not an NPI: it must be 10 digits with a valid check digit")]
    BadNpi(String),
    #[error("not an NPPES endpoint file: the header has no {0:?} column")]
    MissingColumn(&'static str),
    #[error("NPPES endpoint file, line {line}: {source}")]
    Csv { line: u64, source: csv::Error },
}

/// Whether `npi` is a National Provider Identifier: ten digits whose last is the Luhn check
/// digit over the prefix 80840 and the first nine (the card-issuer prefix CMS chose).
pub fn is_npi(npi: &str) -> bool {
    if npi.len() != 10 || !npi.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let digits: Vec<u32> = npi.bytes().map(|b| u32::from(b - b'0')).collect();
    // Luhn from the right over "80840" + the first nine digits; 80840 alone contributes 24.
    let mut sum = 24;
    for (i, d) in digits[..9].iter().rev().enumerate() {
        sum += if i % 2 == 0 {
            let doubled = d * 2;
            doubled / 10 + doubled % 10
        } else {
            *d
        };
    }
    (10 - sum % 10) % 10 == digits[9]
}

/// `npi` checked, or the reason it is not one.
pub fn check_npi(npi: &str) -> Result<&str, DirectoryError> {
    let npi = npi.trim();
    if is_npi(npi) {
        Ok(npi)
    } else {
        Err(DirectoryError::BadNpi(npi.to_string()))
    }
}

/// One Direct address the file lists for a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub npi: String,
    pub address: String,
    /// The affiliated organisation's legal name, or the endpoint's description.
    pub name: Option<String>,
}

/// What reading a file found besides the endpoints, so the import can say what it skipped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Rows of other endpoint types (FHIR, SOAP, REST, websites...).
    pub other_types: u64,
    pub bad_npi: u64,
    pub bad_address: u64,
}

/// Reads an NPPES endpoint file: a quoted CSV with a header row. Columns are found by name, so
/// the order (which CMS has changed between releases) does not matter; only Endpoint Type
/// `DIRECT` rows are Direct addresses. Streams: the monthly file is large.
pub struct NppesEndpoints<R: Read> {
    reader: csv::Reader<R>,
    record: csv::StringRecord,
    npi: usize,
    kind: usize,
    endpoint: usize,
    names: [Option<usize>; 2],
    /// What was passed over so far.
    pub skipped: Skipped,
}

impl<R: Read> NppesEndpoints<R> {
    pub fn new(input: R) -> Result<Self, DirectoryError> {
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
        let headers = reader
            .headers()
            .map_err(|source| DirectoryError::Csv { line: 1, source })?
            .clone();
        let column = |name: &'static str| {
            headers
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name))
        };
        let need = |name| column(name).ok_or(DirectoryError::MissingColumn(name));
        Ok(NppesEndpoints {
            npi: need("NPI")?,
            kind: need("Endpoint Type")?,
            endpoint: need("Endpoint")?,
            names: [
                column("Affiliation Legal Business Name"),
                column("Endpoint Description"),
            ],
            reader,
            record: csv::StringRecord::new(),
            skipped: Skipped::default(),
        })
    }

    /// The next Direct address in the file, or `None` at its end.
    pub fn next_endpoint(&mut self) -> Result<Option<Endpoint>, DirectoryError> {
        loop {
            let line = self.reader.position().line();
            match self.reader.read_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(source) => return Err(DirectoryError::Csv { line, source }),
            }
            let field = |i: usize| self.record.get(i).unwrap_or("").trim();
            if !field(self.kind).eq_ignore_ascii_case("DIRECT") {
                self.skipped.other_types += 1;
                continue;
            }
            let npi = field(self.npi);
            if !is_npi(npi) {
                self.skipped.bad_npi += 1;
                continue;
            }
            // Some rows carry a "mailto:" prefix.
            let raw = field(self.endpoint);
            let address = crate::address::normalize(raw.strip_prefix("mailto:").unwrap_or(raw));
            if !crate::address::is_valid(&address) {
                self.skipped.bad_address += 1;
                continue;
            }
            let name = self
                .names
                .iter()
                .flatten()
                .map(|&i| field(i))
                .find(|n| !n.is_empty())
                .map(str::to_string);
            return Ok(Some(Endpoint {
                npi: npi.to_string(),
                address,
                name,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npi_check_digit() {
        // CMS's worked example: 123456789 has check digit 3.
        assert!(is_npi("1234567893"));
        assert!(!is_npi("1234567890"));
        assert!(!is_npi("123456789"));
        assert!(!is_npi("12345678a3"));
        assert!(check_npi(" 1234567893 ").is_ok());
        assert!(matches!(check_npi("1"), Err(DirectoryError::BadNpi(_))));
    }

    #[test]
    fn endpoint_rows_by_column_name() {
        let file = "\"Endpoint Type\",\"NPI\",\"Endpoint\",\"Endpoint Description\",\"Affiliation Legal Business Name\"\n\
            \"DIRECT\",\"1234567893\",\"Dr.Lee@Direct.Example.org\",\"\",\"Example Clinic, LLC\"\n\
            \"FHIR\",\"1234567893\",\"https://fhir.example.org\",\"\",\"\"\n\
            \"DIRECT\",\"1234567890\",\"x@direct.example.org\",\"\",\"\"\n\
            \"DIRECT\",\"1234567893\",\"not an address\",\"\",\"\"\n\
            \"DIRECT\",\"1234567893\",\"mailto:lab@direct.example.org\",\"Lab inbox\",\"\"\n";
        let mut reader = NppesEndpoints::new(file.as_bytes()).unwrap();
        let mut got = Vec::new();
        while let Some(e) = reader.next_endpoint().unwrap() {
            got.push(e);
        }
        assert_eq!(
            got,
            vec![
                Endpoint {
                    npi: "1234567893".into(),
                    address: "dr.lee@direct.example.org".into(),
                    name: Some("Example Clinic, LLC".into()),
                },
                Endpoint {
                    npi: "1234567893".into(),
                    address: "lab@direct.example.org".into(),
                    name: Some("Lab inbox".into()),
                },
            ]
        );
        assert_eq!(
            reader.skipped,
            Skipped {
                other_types: 1,
                bad_npi: 1,
                bad_address: 1
            }
        );
        let err = NppesEndpoints::new("NPI,Name\n1,2\n".as_bytes())
            .err()
            .unwrap();
        assert!(err.to_string().contains("Endpoint Type"), "{err}");
    }
}
