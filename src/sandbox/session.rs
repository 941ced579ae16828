//! One client connection to the sandbox: the server side of the phiMail line protocol.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncRead, AsyncWrite};

use super::faults::{FaultAction, FaultPlan};
use super::state::{Item, Mail, Part, Routed, State};
use crate::hisp::codec::{CodecError, LineConn};

/// Largest part a client may ADD.
const MAX_ADD: u64 = 256 * 1024 * 1024;

#[derive(Default)]
struct Template {
    to: Vec<String>,
    cc: Vec<String>,
    subject: Option<String>,
    final_requested: bool,
    parts: Vec<(String, Part)>,
}

pub struct Session<S> {
    conn: LineConn<S>,
    state: Arc<Mutex<State>>,
    faults: Arc<Mutex<FaultPlan>>,
    login: Option<String>,
    template: Template,
    /// The item the last CHECK returned: (address, queue sequence, item).
    current: Option<(String, u64, Item)>,
    /// The TLS layer verified a client certificate on this connection.
    client_verified: bool,
}

/// Why a session ended early; the server only logs it.
enum Stop {
    Closed,
    Io(CodecError),
    /// A fault asked for the connection to be aborted with a TCP reset.
    Reset,
}

impl From<CodecError> for Stop {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::Closed => Stop::Closed,
            e => Stop::Io(e),
        }
    }
}

fn mime_for(kind: &str, name: &str, data: &[u8]) -> String {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match kind {
        "CDA" => "application/xml".into(),
        "TEXT" if data.starts_with(b"<html>") => "text/html".into(),
        "TEXT" => "text/plain".into(),
        _ => match ext.as_str() {
            "xml" => "application/xml",
            "pdf" => "application/pdf",
            "zip" => "application/zip",
            "txt" => "text/plain",
            "html" | "htm" => "text/html",
            _ => "application/octet-stream",
        }
        .into(),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub fn new(stream: S, state: Arc<Mutex<State>>, faults: Arc<Mutex<FaultPlan>>) -> Self {
        Session {
            conn: LineConn::new(stream, Duration::from_secs(300)).keep_cr(),
            state,
            faults,
            login: None,
            template: Template::default(),
            current: None,
            client_verified: false,
        }
    }

    /// Marks the connection as authenticated by a verified client certificate.
    pub fn with_client_certificate(mut self, verified: bool) -> Self {
        self.client_verified = verified;
        self
    }

    /// Serves until the client leaves or a fault ends the session. Returns the stream when the
    /// session must end with a TCP reset: only the caller can reach the socket under the TLS
    /// layer, and a reset must not be preceded by a polite close_notify.
    pub async fn run(mut self) -> Option<S> {
        let reset = match self.serve().await {
            Ok(()) | Err(Stop::Closed) => false,
            Err(Stop::Reset) => true,
            Err(Stop::Io(e)) => {
                tracing::debug!(error = %e, "sandbox session ended");
                false
            }
        };
        if let Some((_, _, Item::Mail(_))) = &self.current {
            // The client saw a MAIL and went away without DONE: it will be redelivered.
            self.state.lock().expect("state lock").abandoned_mail += 1;
        }
        if reset {
            return Some(self.conn.into_inner());
        }
        self.conn.shutdown().await;
        None
    }

    async fn reply(&mut self, line: &str) -> Result<(), Stop> {
        Ok(self.conn.write_line(line).await?)
    }

    async fn serve(&mut self) -> Result<(), Stop> {
        loop {
            let line = self.conn.read_line().await?;
            let lenient = self.state.lock().expect("state lock").lenient;
            // Production reads LF-terminated lines and upper-case verbs; a client that passes
            // here by luck would fail to log in at go-live, so the sandbox says so by default.
            if line.contains('\r') && !lenient {
                self.reply("FAIL command line contains a carriage return; end lines with LF only")
                    .await?;
                continue;
            }
            let line = line.trim_end_matches('\r').to_owned();
            let word = line.split(' ').next().unwrap_or("");
            if word != word.to_ascii_uppercase() && !lenient {
                let msg = format!(
                    "FAIL command verbs are upper case: {}",
                    word.to_ascii_uppercase()
                );
                self.reply(&msg).await?;
                continue;
            }
            let verb = word.to_ascii_uppercase();
            let fault = self.faults.lock().expect("fault plan lock").take(&verb);
            let (mut drop_after, mut reset_after) = (false, false);
            match fault {
                Some(FaultAction::Drop) => return Ok(()),
                Some(FaultAction::DropAfter) => drop_after = true,
                Some(FaultAction::ResetAfter) => reset_after = true,
                Some(FaultAction::Reset) => {
                    if verb == "ADD" {
                        // Let the upload begin so the reset lands in the middle of it.
                        self.reply("BEGIN").await?;
                        let _ = self.conn.read_payload(1, 1).await;
                    }
                    return Err(Stop::Reset);
                }
                Some(FaultAction::Delay(d)) => tokio::time::sleep(d).await,
                Some(FaultAction::Fail(text)) => {
                    self.reply(&format!("FAIL {text}")).await?;
                    continue;
                }
                Some(FaultAction::Garbage(text)) => {
                    self.reply(&text).await?;
                    continue;
                }
                Some(FaultAction::Stall) => {
                    // Hold the socket until the client gives up.
                    loop {
                        self.conn.read_line().await?;
                    }
                }
                Some(action @ (FaultAction::Truncate(_) | FaultAction::LieLength(_)))
                    if verb == "SHOW" =>
                {
                    self.show(&line, Some(action)).await?;
                    continue;
                }
                // Payload faults mean nothing for commands without a payload.
                Some(FaultAction::Truncate(_) | FaultAction::LieLength(_)) | None => {}
            }
            if drop_after || reset_after {
                // Do the work but never tell the client: the at-least-once window.
                // Replies go to a pipe whose far end is gone, so the state changes happen and the
                // client hears nothing.
                let (muted, far_end) = tokio::io::duplex(64);
                drop(far_end);
                let mut sink = Session::new(muted, self.state.clone(), self.faults.clone());
                sink.login = self.login.clone();
                sink.template = std::mem::take(&mut self.template);
                sink.current = self.current.take();
                let _ = sink.handle(&verb, &line).await;
                return if reset_after {
                    Err(Stop::Reset)
                } else {
                    Ok(())
                };
            }
            if !self.handle(&verb, &line).await? {
                return Ok(());
            }
        }
    }

    /// Handles one command. Returns false when the session should end.
    async fn handle(&mut self, verb: &str, line: &str) -> Result<bool, Stop> {
        let arg = line.split_once(' ').map(|(_, a)| a).unwrap_or("");
        if self.login.is_none() && !matches!(verb, "INFO" | "AUTH" | "BYE") {
            self.reply("FAIL not authenticated").await?;
            return Ok(true);
        }
        match verb {
            "INFO" => self.reply("OK").await?,
            "AUTH" => self.auth(arg).await?,
            "PASS" => {
                let login = self.login.clone().unwrap_or_default();
                if arg.is_empty() || arg.contains(' ') {
                    self.reply("FAIL password must be one word").await?;
                } else {
                    self.state
                        .lock()
                        .expect("state lock")
                        .passwords
                        .insert(login, arg.into());
                    self.reply("OK").await?;
                }
            }
            "TO" | "CC" => {
                let addr = arg.trim().to_ascii_lowercase();
                let refusal = self.state.lock().expect("state lock").refuse_at_to(&addr);
                if !crate::address::is_valid(&addr) {
                    self.reply(&format!("FAIL invalid address {addr}")).await?;
                } else if let Some(why) = refusal {
                    self.reply(&format!("FAIL {why}")).await?;
                } else {
                    let local = self
                        .state
                        .lock()
                        .expect("state lock")
                        .is_local_address(&addr);
                    self.reply("OK").await?;
                    let kind = if local { "local" } else { "remote" };
                    self.reply(&format!("{addr} {kind}")).await?;
                    if verb == "TO" {
                        self.template.to.push(addr)
                    } else {
                        self.template.cc.push(addr)
                    }
                }
            }
            "SUBJECT" => {
                self.template.subject = (!arg.is_empty()).then(|| arg.to_owned());
                self.reply("OK").await?;
            }
            "SET" => match arg {
                "FINAL 1" => {
                    self.template.final_requested = true;
                    self.reply("OK").await?;
                }
                "FINAL 0" => {
                    self.template.final_requested = false;
                    self.reply("OK").await?;
                }
                _ => self.reply("FAIL unknown setting").await?,
            },
            "ADD" | "TEXT" => self.add(verb, arg).await?,
            "CLEAR" => {
                self.template = Template::default();
                self.reply("OK").await?;
            }
            "SEND" => return self.send().await,
            "CHECK" => self.check().await?,
            "OK" | "DONE" => self.acknowledge(verb).await?,
            "SHOW" => {
                self.show(line, None).await?;
            }
            "LOOKUP" => self.lookup(arg).await?,
            "LOGOUT" => {
                self.end_login();
                self.reply("OK").await?;
            }
            "BYE" => {
                self.reply("BYE").await?;
                return Ok(false);
            }
            "RETRY" => self.reply("OK").await?,
            _ => self.reply(&format!("FAIL unknown command {verb}")).await?,
        }
        Ok(true)
    }

    /// Forgets everything the previous login selected or built, so nothing of one account's
    /// session (the MAIL to acknowledge, the message template) can act for the next one.
    fn end_login(&mut self) {
        self.login = None;
        self.current = None;
        self.template = Template::default();
    }

    async fn auth(&mut self, arg: &str) -> Result<(), Stop> {
        let (user, password) = arg.split_once(' ').unwrap_or((arg, ""));
        let user = user.to_ascii_lowercase();
        let ok = {
            let state = self.state.lock().expect("state lock");
            if password.is_empty() {
                self.client_verified && state.cert_logins.contains(&user)
            } else {
                state.passwords.get(&user).is_some_and(|p| p == password)
            }
        };
        self.end_login();
        if ok {
            self.login = Some(user);
            self.reply("OK").await
        } else {
            self.reply("FAIL authentication failed").await
        }
    }

    async fn add(&mut self, verb: &str, arg: &str) -> Result<(), Stop> {
        let mut words = arg.split(' ');
        let (kind, len) = if verb == "TEXT" {
            ("TEXT".to_owned(), words.next())
        } else {
            (
                words.next().unwrap_or("").to_ascii_uppercase(),
                words.next(),
            )
        };
        let name = words.next().map(str::to_owned);
        let Some(len) = len.and_then(|l| l.parse::<u64>().ok()) else {
            return self.reply("FAIL bad length").await;
        };
        if !matches!(kind.as_str(), "CDA" | "TEXT" | "RAW" | "MIME" | "CCR") {
            return self
                .reply(&format!("FAIL unknown content type {kind}"))
                .await;
        }
        if len > MAX_ADD {
            return self.reply("FAIL content too large").await;
        }
        self.reply("BEGIN").await?;
        let data = self.conn.read_payload(len, MAX_ADD).await?;
        let n = self.template.parts.len() + 1;
        let filename = name.unwrap_or_else(|| match kind.as_str() {
            "CDA" => format!("document{n}.xml"),
            "TEXT" => format!("text{n}.txt"),
            _ => format!("attachment{n}.bin"),
        });
        let mime_type = mime_for(&kind, &filename, &data);
        let part = Part {
            filename,
            mime_type,
            description: String::new(),
            data,
        };
        self.template.parts.push((kind, part));
        self.reply("OK").await
    }

    async fn send(&mut self) -> Result<bool, Stop> {
        let login = self.login.clone().unwrap_or_default();
        let is_group = self
            .state
            .lock()
            .expect("state lock")
            .groups
            .contains_key(&login);
        if is_group {
            self.reply("FAIL an Address Group login cannot send; log in as the sending address")
                .await?;
            return Ok(true);
        }
        let t = &self.template;
        if t.to.is_empty() && t.cc.is_empty() {
            self.reply("FAIL no recipients").await?;
            return Ok(true);
        }
        // The first part added is the body whatever its type (a C-CDA alone arrives as part 0);
        // everything after it is an attachment.
        let (body_type, body, attachments) = match t.parts.split_first() {
            Some(((kind, first), rest)) => (
                if matches!(kind.as_str(), "TEXT" | "CDA") {
                    format!("{}; charset=utf-8", first.mime_type)
                } else {
                    first.mime_type.clone()
                },
                first.data.clone(),
                rest.iter().map(|(_, p)| p.clone()).collect(),
            ),
            None => (
                "text/plain; charset=utf-8".to_owned(),
                Vec::new(),
                Vec::new(),
            ),
        };
        let recipients: Vec<String> = t.to.iter().chain(&t.cc).cloned().collect();
        let mut lines = Vec::new();
        {
            let mut state = self.state.lock().expect("state lock");
            for rcpt in &recipients {
                let mail = Mail {
                    id: String::new(),
                    sender: login.clone(),
                    recipient: rcpt.clone(),
                    to: t.to.clone(),
                    cc: t.cc.clone(),
                    subject: t.subject.clone().unwrap_or_else(|| "Direct message".into()),
                    date: SystemTime::now(),
                    final_requested: t.final_requested,
                    body_type: body_type.clone(),
                    body: body.clone(),
                    attachments: attachments.clone(),
                };
                lines.push(match state.route(mail) {
                    Routed::Queued(id) => format!("QUEUED {rcpt} {id}"),
                    Routed::Error(why) => format!("ERROR {rcpt} {why}"),
                });
            }
        }
        for line in lines {
            self.reply(&line).await?;
            // Clients answer each line with OK; some just hang up, which is fine too.
            match self.conn.read_line().await {
                Ok(_) => {}
                Err(CodecError::Closed) => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        self.reply("OK").await?;
        Ok(true)
    }

    async fn check(&mut self) -> Result<(), Stop> {
        let login = self.login.clone().unwrap_or_default();
        let head = {
            let state = self.state.lock().expect("state lock");
            state.head(&state.addresses_of(&login))
        };
        let line = match &head {
            None => "NONE".to_owned(),
            Some((_, _, Item::Status { id, code, info })) => {
                format!("STATUS {id} {code} {info}").trim_end().to_owned()
            }
            Some((_, _, Item::Mail(m))) => format!(
                "MAIL {} {} {} {}",
                m.recipient,
                m.sender,
                m.attachments.len(),
                m.id
            ),
        };
        self.current = head;
        self.reply(&line).await
    }

    async fn acknowledge(&mut self, verb: &str) -> Result<(), Stop> {
        let expected = match &self.current {
            Some((_, _, Item::Status { .. })) => "OK",
            Some((_, _, Item::Mail(_))) => "DONE",
            None => {
                // A stray OK (e.g. after a SEND line) is harmless.
                return self
                    .reply(if verb == "OK" {
                        "OK"
                    } else {
                        "FAIL nothing to acknowledge"
                    })
                    .await;
            }
        };
        if verb != expected {
            return self.reply(&format!("FAIL expected {expected}")).await;
        }
        if let Some((addr, seq, _)) = self.current.take() {
            self.state
                .lock()
                .expect("state lock")
                .acknowledge(&addr, seq);
        }
        self.reply("OK").await
    }

    async fn show(&mut self, line: &str, fault: Option<FaultAction>) -> Result<(), Stop> {
        let Some((_, _, Item::Mail(mail))) = self.current.clone() else {
            return self.reply("FAIL no message selected").await;
        };
        let Some(n) = line.split(' ').nth(1).and_then(|n| n.parse::<usize>().ok()) else {
            return self.reply("FAIL bad part number").await;
        };
        let (head, payload, tail) = if n == 0 {
            let mut head = String::from("OK\n");
            head.push_str(&format!("Subject: {}\n", mail.subject));
            head.push_str(&format!("Date: {}\n", crate::timefmt::rfc5322(mail.date)));
            head.push_str(&format!("From: {}\n", mail.sender));
            head.push_str(&format!("To: {}\n", mail.to.join(", ")));
            if !mail.cc.is_empty() {
                head.push_str(&format!("Cc: {}\n", mail.cc.join(", ")));
            }
            head.push_str(&format!("Message-ID: <{}@sandbox.directd>\n\n", mail.id));
            head.push_str(&format!("{}\n", mail.body_type));
            let mut tail = format!("{}\n", mail.attachments.len());
            for a in &mail.attachments {
                tail.push_str(&format!(
                    "{}\n{}\n{}\n",
                    a.filename, a.mime_type, a.description
                ));
            }
            (head, mail.body.clone(), tail)
        } else if let Some(a) = mail.attachments.get(n - 1) {
            (
                format!("OK\n{}\n{}\n", a.filename, a.mime_type),
                a.data.clone(),
                String::new(),
            )
        } else {
            return self.reply("FAIL no such part").await;
        };
        let announced = match &fault {
            Some(FaultAction::LieLength(delta)) => (payload.len() as i64 + delta).max(0),
            _ => payload.len() as i64,
        };
        self.conn
            .write_raw(format!("{head}{announced}\n").as_bytes())
            .await?;
        if let Some(FaultAction::Truncate(keep)) = fault {
            self.conn
                .write_raw(&payload[..keep.min(payload.len())])
                .await?;
            return Err(Stop::Closed);
        }
        self.conn.write_raw(&payload).await?;
        self.conn.write_raw(tail.as_bytes()).await?;
        Ok(())
    }

    async fn lookup(&mut self, arg: &str) -> Result<(), Stop> {
        // `JSON (attr=value)`, attr `mail`, `cn` or `npi`; the value must match the whole attribute,
        // `*` matching any run of characters, as an LDAP equality or substring filter does.
        let Some(filter) = arg.strip_prefix("JSON ") else {
            return self.reply("FAIL only LOOKUP JSON is supported").await;
        };
        let Some((attr, pattern)) = filter
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .split_once('=')
        else {
            return self.reply("FAIL filter must look like (mail=VALUE)").await;
        };
        let attr = attr.trim().to_ascii_lowercase();
        if !["mail", "cn", "npi"].contains(&attr.as_str()) {
            return self.reply(&format!("FAIL unknown attribute {attr}")).await;
        }
        let pattern = pattern.trim().to_ascii_lowercase();
        let mut hits: Vec<String> = {
            let state = self.state.lock().expect("state lock");
            // The accounts (not Address Group logins), then the listed providers; a listing of
            // an account's address adds its NPI and name to that account's entry.
            let mut entries: std::collections::BTreeMap<&str, (Option<&str>, String)> = state
                .passwords
                .keys()
                .filter(|a| !state.groups.contains_key(*a))
                .map(|a| {
                    (
                        a.as_str(),
                        (None, a.split('@').next().unwrap_or("").to_owned()),
                    )
                })
                .collect();
            for d in &state.directory {
                let cn = d
                    .name
                    .clone()
                    .unwrap_or_else(|| d.address.split('@').next().unwrap_or("").to_owned());
                entries.insert(d.address.as_str(), (d.npi.as_deref(), cn));
            }
            entries
                .into_iter()
                .filter_map(|(mail, (npi, cn))| {
                    let value = match attr.as_str() {
                        "mail" => mail.to_owned(),
                        "npi" => npi?.to_owned(),
                        _ => cn.to_ascii_lowercase(),
                    };
                    glob_match(&pattern, &value).then(|| {
                        let mut entry = serde_json::json!({ "mail": mail, "cn": cn });
                        if let Some(npi) = npi {
                            entry["npi"] = npi.into();
                        }
                        entry.to_string()
                    })
                })
                .collect()
        };
        hits.sort();
        self.reply("OK").await?;
        self.reply(&hits.len().to_string()).await?;
        for h in hits {
            self.reply(&h).await?;
        }
        Ok(())
    }
}

/// Whether `value` matches `pattern` as a whole, `*` standing for any run of characters.
fn glob_match(pattern: &str, value: &str) -> bool {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or("");
    let Some(mut rest) = value.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn lookup_patterns_match_whole_values() {
        assert!(glob_match("lee@x.org", "lee@x.org"));
        assert!(!glob_match("lee@x.org", "dr.lee@x.org.evil"));
        assert!(!glob_match("lee", "dr.lee@x.org"));
        assert!(glob_match("*lee*", "dr.lee@x.org"));
        assert!(glob_match("dr.*@x.org", "dr.lee@x.org"));
        assert!(!glob_match("dr.*@x.org", "dr.lee@y.org"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a*a", "a"));
    }
}
