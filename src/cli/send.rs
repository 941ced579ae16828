//! `directd send`: validate, write the outbox, print the local id. The daemon does the network work.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{usage, CliError, CliResult, Context};
use crate::compose::{check_ccda, compose, Composed, Draft, GivenFile, MAX_FILE};
use crate::store::NewOutgoing;

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  directd send --from clinic@direct.example.org --to dr.lee@direct.other.org --final --ccda summary.xml\n  directd send --from clinic@direct.example.org --to a@x.org --cc b@y.org --subject Referral --attach scan.pdf --body 'See attached'\n  directd send --from lab@direct.example.org --to-npi 1234567893 --pdf result.pdf --patient-name 'Ann Example' --birth-date 1970-04-03 --gender F"
)]
pub struct SendArgs {
    /// Sending Direct address (must belong to a configured account).
    #[arg(long, value_name = "ADDR")]
    from: String,
    /// Recipient Direct address (repeatable).
    #[arg(long, value_name = "ADDR", required_unless_present = "to_npi")]
    to: Vec<String>,
    /// Recipient by NPI (repeatable): the Direct address the imported NPPES directory or the
    /// HISP's directory lists for it; fails with the reason when none or several are listed.
    #[arg(long, value_name = "NPI")]
    to_npi: Vec<String>,
    /// Copy recipient (repeatable).
    #[arg(long, value_name = "ADDR")]
    cc: Vec<String>,
    /// Subject line (one line; the HISP uses its default without it).
    #[arg(long, value_name = "TEXT")]
    subject: Option<String>,
    /// Ask for final-delivery confirmation (dispatched).
    #[arg(long = "final")]
    final_delivery: bool,
    /// A C-CDA document (checked to be well-formed XML with a ClinicalDocument root).
    #[arg(long, value_name = "FILE", conflicts_with = "attach")]
    ccda: Option<PathBuf>,
    /// Any file to attach (repeatable).
    #[arg(long, value_name = "FILE")]
    attach: Vec<PathBuf>,
    /// A PDF (a lab or imaging result) to send inside an Unstructured Document (C-CDA) that
    /// names the patient; needs --patient-name, --birth-date and --gender.
    #[arg(long, value_name = "FILE", conflicts_with = "ccda", requires_all = ["patient_name", "birth_date", "gender"])]
    pdf: Option<PathBuf>,
    /// Message body text (without it, a short note naming the attached files is sent as the
    /// body, so every receiver shows something readable).
    #[arg(long, value_name = "TEXT")]
    body: Option<String>,
    // Last: its help heading would otherwise cover the options after it.
    #[command(flatten)]
    document: UnstructuredArgs,
}

/// The patient and document of `--pdf`.
#[derive(Args, Debug)]
#[command(next_help_heading = "Unstructured document (with --pdf)")]
struct UnstructuredArgs {
    /// The patient's name: "Given Family" or "Family, Given".
    #[arg(long, value_name = "NAME", requires = "pdf")]
    patient_name: Option<String>,
    /// The patient's birth date, YYYY-MM-DD.
    #[arg(long, value_name = "DATE", requires = "pdf")]
    birth_date: Option<String>,
    /// The patient's administrative gender: F, M or UN.
    #[arg(long, value_name = "F|M|UN", requires = "pdf")]
    gender: Option<String>,
    /// The patient's identifier on the order (e.g. the MRN), with --patient-id-root.
    #[arg(long, value_name = "ID", requires_all = ["pdf", "patient_id_root"])]
    patient_id: Option<String>,
    /// The OID of the organisation that assigned --patient-id.
    #[arg(long, value_name = "OID", requires = "patient_id")]
    patient_id_root: Option<String>,
    /// The patient's street address.
    #[arg(long, value_name = "TEXT", requires = "pdf")]
    patient_street: Option<String>,
    /// The patient's city.
    #[arg(long, value_name = "TEXT", requires = "pdf")]
    patient_city: Option<String>,
    /// The patient's state (two letters).
    #[arg(long, value_name = "ST", requires = "pdf")]
    patient_state: Option<String>,
    /// The patient's ZIP code.
    #[arg(long, value_name = "ZIP", requires = "pdf")]
    patient_zip: Option<String>,
    /// The patient's phone number.
    #[arg(long, value_name = "PHONE", requires = "pdf")]
    patient_phone: Option<String>,
    /// HL7 marital status code (M, S, D, W, ...).
    #[arg(long, value_name = "CODE", requires = "pdf")]
    marital_status: Option<String>,
    /// CDC race code (e.g. 2106-3 White, 2054-5 Black or African American).
    #[arg(long, value_name = "CODE", requires = "pdf")]
    race: Option<String>,
    /// CDC ethnicity code (2135-2 Hispanic or Latino, 2186-5 Not Hispanic or Latino).
    #[arg(long, value_name = "CODE", requires = "pdf")]
    ethnicity: Option<String>,
    /// The patient's preferred language (e.g. en, es).
    #[arg(long, value_name = "LANG", requires = "pdf")]
    language: Option<String>,
    /// LOINC document type: 11502-2 Laboratory report (default), 18748-4 Diagnostic imaging
    /// study, 11488-4 Consult note, ...; another code needs --title.
    #[arg(long, value_name = "LOINC", default_value = "11502-2")]
    document_type: String,
    /// The document's title (default: the document type's name).
    #[arg(long, value_name = "TEXT", requires = "pdf")]
    title: Option<String>,
    /// The sending organisation written as author and custodian (default: the sender's domain).
    #[arg(long, value_name = "NAME", requires = "pdf")]
    organization: Option<String>,
    /// The clinician who signed the result.
    #[arg(long, value_name = "NAME", requires = "pdf")]
    author_name: Option<String>,
    /// The author's NPI.
    #[arg(long, value_name = "NPI", requires = "pdf")]
    author_npi: Option<String>,
}

/// The Unstructured Document wrapping `pdf`, from the flags.
fn unstructured_document(
    from: &str,
    pdf: &[u8],
    d: &UnstructuredArgs,
) -> Result<Vec<u8>, CliError> {
    use crate::unstructured::{build, Author, Content, PatientDemographics};
    let required = |v: &Option<String>, flag: &str| {
        v.clone()
            .ok_or_else(|| usage(format!("--pdf needs {flag}")))
    };
    let mut patient = PatientDemographics::new(
        &required(&d.patient_name, "--patient-name")?,
        &required(&d.birth_date, "--birth-date")?,
        &required(&d.gender, "--gender")?,
    )
    .map_err(|e| usage(e.to_string()))?;
    patient.id = d.patient_id.clone().zip(d.patient_id_root.clone());
    patient.street = d.patient_street.clone();
    patient.city = d.patient_city.clone();
    patient.state = d.patient_state.clone();
    patient.postal_code = d.patient_zip.clone();
    patient.phone = d.patient_phone.clone();
    patient.marital_status = d.marital_status.clone();
    patient.race = d.race.clone();
    patient.ethnicity = d.ethnicity.clone();
    patient.language = d.language.clone();
    if let Some(npi) = &d.author_npi {
        crate::directory::check_npi(npi).map_err(|e| usage(format!("--author-npi: {e}")))?;
    }
    let author = Author {
        organization: d.organization.clone().unwrap_or_else(|| {
            from.rsplit_once('@')
                .map_or(from, |(_, dom)| dom)
                .to_string()
        }),
        direct_address: from.to_string(),
        person: d.author_name.clone(),
        npi: d.author_npi.clone(),
    };
    let content = Content {
        data: pdf,
        media_type: "application/pdf",
        loinc: &d.document_type,
        title: d.title.as_deref(),
    };
    let xml = build(&patient, &author, &content, std::time::SystemTime::now())
        .map_err(|e| usage(e.to_string()))?;
    // What ingestion would refuse is never sent: the receiver's own reader is stricter still.
    check_ccda(&xml).map_err(|why| {
        CliError::Failure(anyhow::anyhow!(
            "the Unstructured Document built for --pdf fails the C-CDA check: {why}"
        ))
    })?;
    Ok(xml)
}

/// Reads a file given on the command line, refusing what is not a regular file or too large to
/// queue before reading it.
fn read_file(path: &Path) -> Result<GivenFile, CliError> {
    let meta = std::fs::metadata(path).map_err(|e| usage(format!("{}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(usage(format!("{}: not a regular file", path.display())));
    }
    if meta.len() > MAX_FILE {
        return Err(usage(format!(
            "{}: {} bytes is over the {MAX_FILE}-byte limit",
            path.display(),
            meta.len()
        )));
    }
    let data = std::fs::read(path).map_err(|e| usage(format!("{}: {e}", path.display())))?;
    Ok(GivenFile {
        name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
        data,
    })
}

pub fn run(ctx: &Context, args: SendArgs) -> CliResult {
    let ccda = match &args.ccda {
        Some(path) => Some(read_file(path)?),
        None => None,
    };
    let attach = args
        .attach
        .iter()
        .map(|p| read_file(p))
        .collect::<Result<Vec<_>, _>>()?;
    let from = crate::address::normalize(&args.from);
    let document = match &args.pdf {
        Some(path) => {
            let pdf = read_file(path)?;
            if !pdf.data.starts_with(b"%PDF-") {
                return Err(usage(format!(
                    "{}: is not a PDF (it does not start with %PDF-)",
                    path.display()
                )));
            }
            let stem = path
                .file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "result".into());
            Some(GivenFile {
                name: Some(format!("{stem}.xml")),
                data: unstructured_document(&from, &pdf.data, &args.document)?,
            })
        }
        None => None,
    };

    let config = ctx.config_without_secrets()?;
    let account = || {
        config.account_for(&from).ok_or_else(|| {
            usage(format!(
                "no configured account sends for {from} (accounts: {})",
                config
                    .accounts
                    .iter()
                    .map(|a| a.address.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    };
    let open_store =
        || crate::store::Store::open_config(&config.store, true).map_err(anyhow::Error::from);
    // --to-npi becomes --to addresses before the checks, which then see every recipient. Only
    // then is the store opened (created) before the message is known to be good.
    let mut to = args.to.clone();
    let mut resolved = Vec::new();
    let mut store = None;
    for npi in &args.to_npi {
        let directory = match &mut store {
            Some(s) => s,
            None => store.insert(open_store()?),
        };
        let (address, how) = super::directory::resolve_npi(ctx, directory, account()?, npi)?;
        eprintln!("--to-npi {npi}: {address} ({how})");
        to.push(address.clone());
        resolved.push((address, how));
    }
    let Composed {
        from,
        recipients,
        parts,
    } = compose(
        Draft {
            from: args.from.clone(),
            to,
            cc: args.cc.clone(),
            subject: args.subject.clone(),
            body: args.body.clone(),
            ccda,
            document,
            attach,
        },
        [
            "--from",
            "--to",
            "--cc",
            "--pdf (wrapped in a document naming the patient) or --attach",
            "--subject",
        ],
    )
    .map_err(usage)?;
    let account = account()?;
    let mut store = match store {
        Some(s) => s,
        None => open_store()?,
    };
    let id = store.enqueue_noting(
        &NewOutgoing {
            account: Some(account.address.clone()),
            sender: from.clone(),
            recipients: recipients.clone(),
            subject: args.subject,
            final_delivery: args.final_delivery,
            parts,
        },
        &resolved,
    )?;
    store.audit(
        &crate::store::current_actor(),
        "send",
        Some(&format!("out:{id}")),
        None,
    )?;
    // The id alone on stdout, for scripts; the sentence for people on stderr.
    outln!("{id}");
    eprintln!(
        "queued outgoing message {id} from {from} to {}; the daemon sends it",
        recipients
            .iter()
            .map(|r| r.address.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
