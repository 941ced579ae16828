//! `directd inspect FILE`: decrypt and verify a saved message with the configured (or given) keys
//! and anchors and say exactly what holds and what does not: the administrator's tool for
//! interoperability problems.

use std::path::PathBuf;

use clap::Args;
use mail_parser::{MessageParser, MimeHeaders};
use serde::Serialize;

use super::output::json;
use super::{usage, CliError, CliResult, Context};
use crate::smime::{self, Agent, AgentSettings, Direction, Envelope, Identity};

#[derive(Args, Debug)]
#[command(
    after_help = "The revocation policy, CRLs and anchors of the configuration's [smime] section apply as the daemon \
                  applies them, also with --key; --anchor and --crl add to them.\n\n\
                  Examples:\n  directd inspect received.eml\n  directd inspect msg.eml --key bob.key --cert bob.pem --anchor community-ca.pem --crl community-ca.crl --mail-from alice@a.example --rcpt-to bob@b.example --json"
)]
pub struct InspectArgs {
    /// The message (.eml: headers and body as received).
    file: PathBuf,
    /// A private key to decrypt with (PEM; give --cert for each --key, in order).
    #[arg(long, value_name = "KEY")]
    key: Vec<PathBuf>,
    /// The certificate (PEM, intermediates after it) for the --key at the same position.
    #[arg(long, value_name = "CERT")]
    cert: Vec<PathBuf>,
    /// A trust anchor (PEM/DER certificate or .p7b bundle) for the domains of the given keys.
    #[arg(long, value_name = "CA")]
    anchor: Vec<PathBuf>,
    /// A CRL (PEM or DER) to check revocation against, in addition to the configured ones.
    #[arg(long, value_name = "FILE")]
    crl: Vec<PathBuf>,
    /// SMTP MAIL FROM, to run the AS 1.3 envelope check.
    #[arg(long, value_name = "ADDR", requires = "rcpt_to")]
    mail_from: Option<String>,
    /// SMTP RCPT TO (repeatable).
    #[arg(long, value_name = "ADDR")]
    rcpt_to: Vec<String>,
    /// Print JSON (for scripts) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Part {
    content_type: String,
    filename: Option<String>,
    size: usize,
}

/// What revocation checking could consult, so a "not revoked" is never silently "not checked".
#[derive(Serialize)]
struct Revocation {
    policy: smime::RevocationPolicy,
    crls: usize,
}

#[derive(Serialize)]
struct Report {
    accepted: bool,
    error: Option<String>,
    revocation: Revocation,
    verdict: Option<smime::Verdict>,
    subject: Option<String>,
    parts: Vec<Part>,
}

fn load_agent(ctx: &Context, args: &InspectArgs) -> Result<Agent, CliError> {
    if args.key.len() != args.cert.len() {
        return Err(usage("give one --cert for each --key"));
    }
    // With --key the configured keys give way to the given ones, but the configured trust
    // (revocation policy, CRLs, anchors) still holds: inspect must judge as the daemon does.
    let configured = ctx.config()?.smime;
    let settings = if args.key.is_empty() {
        configured.ok_or_else(|| {
            usage("no [smime] section in the configuration; give --key/--cert/--anchor")
        })?
    } else {
        let configured = configured.unwrap_or_default();
        AgentSettings {
            anchors: configured.anchors,
            crl_files: configured.crl_files,
            revocation: configured.revocation,
            ..AgentSettings::default()
        }
    };
    let mut agent = Agent::load(&settings)?;
    for crl in &args.crl {
        agent.trust.load_crl_file(crl)?;
    }
    for (k, c) in args.key.iter().zip(&args.cert) {
        if let Some(mode) = crate::fsutil::group_or_world_readable(k)
            .map_err(|e| usage(format!("{}: {e}", k.display())))?
        {
            return Err(usage(format!(
                "{}: private key is readable by group or others (mode {mode:o}); chmod 600 it",
                k.display()
            )));
        }
        let key = openssl::pkey::PKey::private_key_from_pem(
            &std::fs::read(k).map_err(|e| usage(format!("{}: {e}", k.display())))?,
        )
        .map_err(|e| usage(format!("{}: not a PEM private key: {e}", k.display())))?;
        let mut certs = openssl::x509::X509::stack_from_pem(
            &std::fs::read(c).map_err(|e| usage(format!("{}: {e}", c.display())))?,
        )
        .map_err(|e| usage(format!("{}: not PEM certificates: {e}", c.display())))?
        .into_iter();
        let cert = certs
            .next()
            .ok_or_else(|| usage(format!("{}: no certificate", c.display())))?;
        agent.keys.add(
            Identity::new(cert, key, certs.collect())
                .map_err(|e| usage(format!("{}: {e}", k.display())))?,
        );
    }
    let domains: Vec<String> = agent
        .keys
        .identities()
        .iter()
        .filter_map(|i| i.domain())
        .collect();
    for a in &args.anchor {
        for d in &domains {
            agent.trust.load_anchor_file(d, Direction::Incoming, a)?;
        }
    }
    Ok(agent)
}

pub fn run(ctx: &Context, args: InspectArgs) -> CliResult {
    let raw =
        std::fs::read(&args.file).map_err(|e| usage(format!("{}: {e}", args.file.display())))?;
    let agent = load_agent(ctx, &args)?;
    let revocation = Revocation {
        policy: agent.trust.revocation(),
        crls: agent.trust.crl_count(),
    };
    let envelope = args.mail_from.as_ref().map(|from| Envelope {
        mail_from: from.clone(),
        rcpt_to: args.rcpt_to.clone(),
    });
    // Through the agent, so inspect fetches CRLs and AIA issuers as the daemon would. The
    // sealed text is handed over, decoded in place and gone before the inner message is parsed
    // (which decodes its attachments): the peaks do not add up.
    let opened = super::runtime()?.block_on(agent.open_owned(raw, envelope.as_ref()));
    let report = match opened {
        Ok(opened) => {
            let parsed = MessageParser::default().parse(&opened.inner);
            let parts = parsed
                .as_ref()
                .map(|m| {
                    m.parts
                        .iter()
                        .filter(|p| !matches!(p.body, mail_parser::PartType::Multipart(_)))
                        .map(|p| Part {
                            content_type: p
                                .content_type()
                                .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")))
                                .unwrap_or_else(|| "text/plain".into()),
                            filename: p.attachment_name().map(str::to_owned),
                            size: p.contents().len(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let subject = parsed.as_ref().and_then(|m| m.subject().map(str::to_owned));
            Report {
                accepted: true,
                error: None,
                revocation,
                verdict: Some(opened.verdict),
                subject,
                parts,
            }
        }
        Err(e) => Report {
            accepted: false,
            error: Some(e.to_string()),
            revocation,
            verdict: None,
            subject: None,
            parts: Vec::new(),
        },
    };
    if args.json {
        json(&super::schema::versioned(&report))?;
    } else if let Some(v) = &report.verdict {
        outln!("ACCEPTED");
        outln!(
            "decrypted by   {} (serial {})",
            v.decrypted_by,
            v.decrypted_by_serial
        );
        outln!(
            "algorithms     {} content, {} key transport",
            v.content_cipher,
            key_transport_name(v.key_transport)
        );
        outln!(
            "wrapped        {}",
            if v.wrapped {
                "yes (message/rfc822; inner headers used)"
            } else {
                "no"
            }
        );
        outln!("from           {}", v.from);
        for s in &v.signers {
            outln!(
                "signer         {} ({}, {})",
                s.subject,
                s.digest,
                binding_words(s.binding)
            );
            outln!(
                "  trusted by   {} via {} anchors of {}",
                s.trusted_by,
                s.chain.len(),
                v.recipient_domain
            );
        }
        print_revocation(&report.revocation);
        outln!(
            "envelope check {}",
            match v.envelope {
                smime::EnvelopeCheck::NotChecked => "not checked",
                smime::EnvelopeCheck::Passed => "passed",
            }
        );
        for note in &v.notes {
            outln!("note           {note}");
        }
        outln!(
            "subject        {}",
            report.subject.as_deref().unwrap_or("-")
        );
        for p in &report.parts {
            outln!(
                "part           {} {} ({} bytes)",
                p.content_type,
                p.filename.as_deref().unwrap_or(""),
                p.size
            );
        }
    } else {
        outln!("REFUSED: {}", report.error.as_deref().unwrap_or("unknown"));
        print_revocation(&report.revocation);
    }
    if report.accepted {
        Ok(())
    } else {
        Err(CliError::Failure(anyhow::anyhow!(
            "message refused: {}",
            report.error.unwrap_or_default()
        )))
    }
}

fn print_revocation(r: &Revocation) {
    let policy = match r.policy {
        smime::RevocationPolicy::Require => "require (a current CRL must cover every certificate)",
        smime::RevocationPolicy::BestEffort => "best-effort (checked where a CRL is loaded)",
        smime::RevocationPolicy::Off => "off (not checked)",
    };
    let crls = match r.crls {
        1 => "1 CRL".to_string(),
        n => format!("{n} CRLs"),
    };
    outln!("revocation     {policy}, {crls} loaded");
}

fn binding_words(binding: Option<smime::Binding>) -> &'static str {
    match binding {
        Some(smime::Binding::Address) => "address-bound",
        Some(smime::Binding::Domain) => "domain-bound",
        Some(smime::Binding::LegacySubjectEmail) => "bound by subject e-mail",
        None => "not bound",
    }
}

fn key_transport_name(kt: smime::KeyTransport) -> &'static str {
    match kt {
        smime::KeyTransport::RsaOaepSha256 => "RSA-OAEP (SHA-256)",
        smime::KeyTransport::RsaOaepSha1 => "RSA-OAEP (SHA-1)",
        smime::KeyTransport::RsaPkcs1v15 => "RSA PKCS#1 v1.5",
        smime::KeyTransport::RsaOaepOther => "RSA-OAEP (other parameters)",
    }
}
