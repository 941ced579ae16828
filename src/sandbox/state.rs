//! The sandbox HISP's memory: accounts, Address Groups, per-address queues and the messages that
//! are waiting for final-delivery confirmation.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How mail to a non-local domain behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteBehaviour {
    /// Accepted and, when final delivery was requested, confirmed `dispatched` at once.
    Confirm,
    /// Accepted, then `STATUS failed`.
    Fail,
    /// Accepted and never confirmed (the `failed_after` timeout eventually fires if asked for).
    Never,
    /// Refused at `TO`: the HISP finds no certificate for the recipient.
    NoCert,
    /// Refused at `TO`: the recipient's certificate does not chain to a trust anchor here.
    Untrusted,
}

impl std::str::FromStr for RemoteBehaviour {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "confirm" => Ok(Self::Confirm),
            "fail" => Ok(Self::Fail),
            "never" => Ok(Self::Never),
            "nocert" => Ok(Self::NoCert),
            "untrusted" => Ok(Self::Untrusted),
            _ => Err(format!(
                "unknown remote behaviour {s:?} (confirm, fail, never, nocert, untrusted)"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Part {
    pub filename: String,
    pub mime_type: String,
    pub description: String,
    pub data: Vec<u8>,
}

/// One recipient's copy of a sent message.
#[derive(Debug)]
pub struct Mail {
    pub id: String,
    pub sender: String,
    pub recipient: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub date: SystemTime,
    pub final_requested: bool,
    pub body_type: String,
    pub body: Vec<u8>,
    pub attachments: Vec<Part>,
}

#[derive(Debug, Clone)]
pub enum Item {
    Mail(Arc<Mail>),
    Status {
        id: String,
        code: String,
        info: String,
    },
}

/// A record of every copy the sandbox accepted, for tests that count duplicates.
#[derive(Debug, Clone)]
pub struct SentRecord {
    pub id: String,
    pub sender: String,
    pub recipient: String,
    pub subject: String,
    pub body: Vec<u8>,
}

/// The outcome of routing one recipient at SEND time.
pub enum Routed {
    Queued(String),
    Error(String),
}

#[derive(Default)]
pub struct State {
    pub passwords: HashMap<String, String>,
    /// Group login → member addresses.
    pub groups: HashMap<String, Vec<String>>,
    pub remote: HashMap<String, RemoteBehaviour>,
    pub failed_after: Duration,
    pub(super) queues: HashMap<String, VecDeque<(u64, Item)>>,
    /// Copy id (the receiver's MAIL id, or the QUEUED id of a remote copy) → (sender, the id the
    /// sender was given in QUEUED, deadline) for copies whose sender asked for final delivery.
    pub(super) awaiting_final: HashMap<String, (String, String, Instant)>,
    /// Accept CRLF lines and lower-case verbs (production refuses them).
    pub lenient: bool,
    /// Logins that may AUTH without a password on a connection with a verified client
    /// certificate (certificate-authenticated Address Groups).
    pub cert_logins: std::collections::HashSet<String>,
    /// Directory entries besides the accounts, for LOOKUP.
    pub directory: Vec<super::DirectoryListing>,
    pub(super) next_seq: u64,
    pub(super) next_id: u64,
    pub sent: Vec<SentRecord>,
    /// Sessions that ended between a MAIL and its DONE (crash drills count on these).
    pub abandoned_mail: u64,
}

fn domain(addr: &str) -> &str {
    addr.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

impl State {
    pub fn is_local_address(&self, addr: &str) -> bool {
        self.passwords.contains_key(&addr.to_ascii_lowercase())
    }

    fn is_local_domain(&self, d: &str) -> bool {
        self.passwords
            .keys()
            .any(|a| domain(a).eq_ignore_ascii_case(d))
    }

    /// The addresses a login covers: itself, or a group's members.
    pub fn addresses_of(&self, login: &str) -> Vec<String> {
        match self.groups.get(login) {
            Some(members) => members.clone(),
            None => vec![login.to_owned()],
        }
    }

    fn push(&mut self, addr: &str, item: Item) {
        self.next_seq += 1;
        let seq = self.next_seq;
        self.queues
            .entry(addr.to_ascii_lowercase())
            .or_default()
            .push_back((seq, item));
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("sbx-{:08}-{}", self.next_id, std::process::id())
    }

    /// What production checks at `TO`/`CC`: a refusal here is a `FAIL` for that recipient
    /// before anything is sent. `None` means the address is accepted.
    pub fn refuse_at_to(&self, addr: &str) -> Option<String> {
        let d = domain(addr).to_ascii_lowercase();
        match self.remote.get(&d) {
            Some(RemoteBehaviour::NoCert) => Some(format!("no certificate found for {addr}")),
            Some(RemoteBehaviour::Untrusted) => Some(format!(
                "the certificate for {addr} is not trusted by this HISP"
            )),
            Some(_) => None,
            None if self.is_local_domain(&d) => None,
            None => Some(format!("domain {d} is not reachable from this HISP")),
        }
    }

    /// Routes one recipient's copy. The sender's QUEUED id and the receiver's MAIL id are
    /// different ids, as on a real HISP, where the receiving side names the message itself.
    pub fn route(&mut self, template: Mail) -> Routed {
        let rcpt = template.recipient.to_ascii_lowercase();
        let d = domain(&rcpt).to_ascii_lowercase();
        if let Some(why) = self.refuse_at_to(&rcpt) {
            // Only reached by a template whose TO was refused: the address was never added.
            return Routed::Error(why);
        }
        let remote = self.remote.get(&d).copied();
        if remote.is_none() && !self.is_local_address(&rcpt) {
            return Routed::Error("unknown recipient".into());
        }
        let queued = self.new_id();
        self.sent.push(SentRecord {
            id: queued.clone(),
            sender: template.sender.clone(),
            recipient: rcpt.clone(),
            subject: template.subject.clone(),
            body: template.body.clone(),
        });
        let deadline = Instant::now() + self.failed_after;
        let sender = template.sender.clone();
        match remote {
            None => {
                let mail = Mail {
                    id: self.new_id(),
                    ..template
                };
                if mail.final_requested {
                    self.awaiting_final
                        .insert(mail.id.clone(), (sender, queued.clone(), deadline));
                }
                self.push(&rcpt, Item::Mail(Arc::new(mail)));
            }
            Some(RemoteBehaviour::Confirm) if template.final_requested => {
                self.status(&sender, &queued, "dispatched", "confirmed by remote HISP");
            }
            Some(RemoteBehaviour::Fail) => {
                self.status(
                    &sender,
                    &queued,
                    "failed",
                    "remote HISP rejected the message",
                );
            }
            Some(RemoteBehaviour::Never) if template.final_requested => {
                self.awaiting_final
                    .insert(queued.clone(), (sender, queued.clone(), deadline));
            }
            Some(_) => {}
        }
        Routed::Queued(queued)
    }

    fn status(&mut self, sender: &str, id: &str, code: &str, info: &str) {
        if self.is_local_address(sender) {
            let item = Item::Status {
                id: id.into(),
                code: code.into(),
                info: info.into(),
            };
            self.push(sender, item);
        }
    }

    /// The oldest unacknowledged item across the addresses a login covers.
    pub fn head(&self, addresses: &[String]) -> Option<(String, u64, Item)> {
        addresses
            .iter()
            .filter_map(|a| {
                let q = self.queues.get(&a.to_ascii_lowercase())?;
                q.front()
                    .map(|(seq, item)| (a.to_ascii_lowercase(), *seq, item.clone()))
            })
            .min_by_key(|(_, seq, _)| *seq)
    }

    /// Removes an acknowledged item. A DONE for mail that asked for final delivery produces the
    /// sender's `dispatched` notification.
    pub fn acknowledge(&mut self, addr: &str, seq: u64) -> bool {
        let Some(q) = self.queues.get_mut(addr) else {
            return false;
        };
        let Some(pos) = q.iter().position(|(s, _)| *s == seq) else {
            return false;
        };
        let (_, item) = q.remove(pos).expect("position is in range");
        if let Item::Mail(mail) = item {
            if let Some((sender, queued, _)) = self.awaiting_final.remove(&mail.id) {
                self.status(&sender, &queued, "dispatched", "delivered to recipient");
            }
        }
        true
    }

    /// Fires `failed` for every copy whose confirmation window has closed.
    pub fn expire(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .awaiting_final
            .iter()
            .filter(|(_, (_, _, deadline))| *deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some((sender, queued, _)) = self.awaiting_final.remove(&id) {
                self.status(
                    &sender,
                    &queued,
                    "failed",
                    "no delivery confirmation before timeout",
                );
            }
        }
    }

    pub fn queue_len(&self, addr: &str) -> usize {
        self.queues
            .get(&addr.to_ascii_lowercase())
            .map_or(0, VecDeque::len)
    }

    /// Puts a message straight into a local queue, as if someone elsewhere had sent it (tests and
    /// crash drills preload inboxes this way).
    pub fn inject(&mut self, mut mail: Mail) -> String {
        let id = self.new_id();
        mail.id = id.clone();
        let rcpt = mail.recipient.to_ascii_lowercase();
        self.push(&rcpt, Item::Mail(Arc::new(mail)));
        id
    }
}
