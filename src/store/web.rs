//! The web console's tables: users and the accounts they may see, sessions, login attempts;
//! and the reads and writes of its pages, each audited in the transaction of what it records.

use rusqlite::{params, OptionalExtension};

use super::audit::record;
use super::{now, AuditRow, NewOutgoing, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Sender,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Sender => "sender",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "sender" => Some(Role::Sender),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct WebUser {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub password_hash: String,
    pub totp_secret: Option<Vec<u8>>,
    pub totp_last_step: i64,
    pub disabled: bool,
    pub accounts: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStage {
    Password,
    Enrol,
    Full,
}

impl SessionStage {
    fn as_str(self) -> &'static str {
        match self {
            SessionStage::Password => "password",
            SessionStage::Enrol => "enrol",
            SessionStage::Full => "full",
        }
    }
}

#[derive(Debug, Clone)]
pub struct WebSession {
    pub user_id: i64,
    pub csrf: String,
    pub stage: SessionStage,
    pub pending_secret: Option<Vec<u8>>,
    pub last_seen_ms: i64,
}

/// A received message as the inbox lists it.
#[derive(Debug, Clone)]
pub struct InboxRow {
    pub id: i64,
    pub received_at: String,
    pub account: String,
    pub sender: String,
    pub subject: Option<String>,
    pub quarantine_reason: Option<String>,
    pub read: bool,
    pub attachments: i64,
    pub ingest_failures: i64,
    pub pending: i64,
}

#[derive(Debug, Clone, Default)]
pub struct InboxFilter {
    pub sender: Option<String>,
    pub patient: Option<String>,
    /// RFC 3339 prefixes (a day "2026-12-01" works) bounding received_at.
    pub from_date: Option<String>,
    pub to_date: Option<String>,
}

/// An outgoing message as the Sent page lists it.
#[derive(Debug, Clone)]
pub struct SentRow {
    pub id: i64,
    pub created_at: String,
    pub account: Option<String>,
    pub sender: String,
    pub subject: Option<String>,
    pub state: String,
    pub last_error: Option<String>,
    pub final_delivery: bool,
}

/// A document as the pages list it, with the account of the message it came in.
#[derive(Debug, Clone)]
pub struct DocumentRow {
    pub id: i64,
    pub kind: String,
    pub title: Option<String>,
    pub effective_time: Option<String>,
    pub patient_id: Option<i64>,
    pub patient_name: Option<String>,
    pub incoming_id: Option<i64>,
    pub account: Option<String>,
}

/// A second factor accepted: the half-open session `old_hash` becomes the full session
/// `new_hash`; `step` is the TOTP step the code matched, `enrolled` the secret confirmed at a
/// first login.
pub struct Completion<'a> {
    pub old_hash: &'a str,
    pub new_hash: &'a str,
    pub csrf: &'a str,
    pub step: i64,
    pub enrolled: Option<&'a [u8]>,
    pub now_ms: i64,
}

/// An unstructured document's body as stored.
pub struct DocumentFile {
    pub data: Vec<u8>,
    pub media_type: Option<String>,
}

/// What a mark-read did: owed a read receipt, or why none is owed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkRead {
    Queued,
    AlreadyOwed,
    NotRequested,
    NotPossible,
}

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WebUser> {
    let role: String = r.get(2)?;
    Ok(WebUser {
        id: r.get(0)?,
        name: r.get(1)?,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        password_hash: r.get(3)?,
        totp_secret: r.get(4)?,
        totp_last_step: r.get(5)?,
        disabled: r.get(6)?,
        accounts: Vec::new(),
    })
}

const USER_SELECT: &str =
    "SELECT id, name, role, password_hash, totp_secret, totp_last_step, disabled FROM web_users";

/// `?,?,?` for an IN list of `n` values after `first` other parameters.
fn placeholders(first: usize, n: usize) -> String {
    (0..n.max(1))
        .map(|i| format!("?{}", first + i + 1))
        .collect::<Vec<_>>()
        .join(", ")
}

fn user_accounts(conn: &rusqlite::Connection, id: i64) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached(
        "SELECT account FROM web_user_accounts WHERE user_id = ?1 ORDER BY account",
    )?
    .query_map([id], |r| r.get(0))?
    .collect()
}

impl Store {
    pub fn web_user_add(
        &mut self,
        actor: &str,
        name: &str,
        role: Role,
        password_hash: &str,
        accounts: &[String],
    ) -> Result<i64, StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO web_users (name, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![name, role.as_str(), password_hash, now()],
            )?;
            let id = tx.last_insert_rowid();
            for a in accounts {
                tx.execute(
                    "INSERT OR IGNORE INTO web_user_accounts (user_id, account) VALUES (?1, ?2)",
                    params![id, a],
                )?;
            }
            record(
                tx,
                actor,
                "web user add",
                None,
                Some(&format!("{name} ({}) accounts {}", role.as_str(), accounts.join(", "))),
            )?;
            Ok(id)
        })
    }

    pub fn web_user(&self, name: &str) -> Result<Option<WebUser>, StoreError> {
        self.web_user_where("name = ?1", &name)
    }

    pub fn web_user_by_id(&self, id: i64) -> Result<Option<WebUser>, StoreError> {
        self.web_user_where("id = ?1", &id)
    }

    fn web_user_where(
        &self,
        cond: &str,
        value: &dyn rusqlite::ToSql,
    ) -> Result<Option<WebUser>, StoreError> {
        let conn = &self.conn;
        (|| {
            let user = conn
                .prepare_cached(&format!("{USER_SELECT} WHERE {cond}"))?
                .query_row([value], user_row)
                .optional()?;
            user.map(|mut u| {
                u.accounts = user_accounts(conn, u.id)?;
                Ok(u)
            })
            .transpose()
        })()
        .map_err(|e| self.err(e))
    }

    pub fn web_users(&self) -> Result<Vec<WebUser>, StoreError> {
        let conn = &self.conn;
        (|| {
            let mut users: Vec<WebUser> = conn
                .prepare_cached(&format!("{USER_SELECT} ORDER BY name"))?
                .query_map([], user_row)?
                .collect::<Result<_, _>>()?;
            for u in &mut users {
                u.accounts = user_accounts(conn, u.id)?;
            }
            Ok(users)
        })()
        .map_err(|e| self.err(e))
    }

    /// Changes a user (disable, new password, new second factor) and ends their sessions, so
    /// the change takes effect at once. Returns false when there is no such user.
    pub fn web_user_update(
        &mut self,
        actor: &str,
        name: &str,
        action: &str,
        set: &str,
        value: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.write(|tx| {
            let sql = format!("UPDATE web_users SET {set} WHERE name = ?1");
            let n = match value {
                Some(v) => tx.execute(&sql, params![name, v])?,
                None => tx.execute(&sql, params![name])?,
            };
            if n == 0 {
                return Ok(false);
            }
            tx.execute(
                "DELETE FROM web_sessions WHERE user_id = (SELECT id FROM web_users WHERE name = ?1)",
                [name],
            )?;
            record(tx, actor, action, None, Some(name))?;
            Ok(true)
        })
    }

    /// Records a login step's outcome under the name typed.
    pub fn web_login_attempt(&self, name: &str, ok: bool, now_ms: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO web_login_attempts (at_ms, name, ok) VALUES (?1, ?2, ?3)",
                params![now_ms, name, ok],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The failures since the name's last success, and when the last of them was.
    pub fn web_login_failures(&self, name: &str) -> Result<(i64, i64), StoreError> {
        self.conn
            .query_row(
                "SELECT count(*), coalesce(max(at_ms), 0) FROM web_login_attempts
                 WHERE name = ?1 AND ok = 0
                   AND id > coalesce((SELECT max(id) FROM web_login_attempts WHERE name = ?1 AND ok = 1), 0)",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.err(e))
    }

    pub fn web_session_create(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf: &str,
        stage: SessionStage,
        pending_secret: Option<&[u8]>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO web_sessions (token_hash, user_id, csrf, stage, pending_secret, created_ms, last_seen_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![token_hash, user_id, csrf, stage.as_str(), pending_secret, now_ms],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The session a cookie names, if it is still there and was used after `idle_since_ms`.
    pub fn web_session(
        &self,
        token_hash: &str,
        idle_since_ms: i64,
    ) -> Result<Option<WebSession>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT s.user_id, s.csrf, s.stage, s.pending_secret, s.last_seen_ms
                 FROM web_sessions s JOIN web_users u ON u.id = s.user_id
                 WHERE s.token_hash = ?1 AND s.last_seen_ms >= ?2 AND u.disabled = 0",
            )
            .and_then(|mut s| {
                s.query_row(params![token_hash, idle_since_ms], |r| {
                    let stage: String = r.get(2)?;
                    Ok(WebSession {
                        user_id: r.get(0)?,
                        csrf: r.get(1)?,
                        stage: match stage.as_str() {
                            "full" => SessionStage::Full,
                            "enrol" => SessionStage::Enrol,
                            _ => SessionStage::Password,
                        },
                        pending_secret: r.get(3)?,
                        last_seen_ms: r.get(4)?,
                    })
                })
                .optional()
            })
            .map_err(|e| self.err(e))
    }

    /// Marks a session used now, and deletes every session idle since before `idle_since_ms`
    /// (they are refused already; this keeps the table small).
    pub fn web_session_touch(
        &mut self,
        token_hash: &str,
        now_ms: i64,
        idle_since_ms: i64,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE web_sessions SET last_seen_ms = ?2 WHERE token_hash = ?1",
                params![token_hash, now_ms],
            )?;
            tx.execute(
                "DELETE FROM web_sessions WHERE last_seen_ms < ?1",
                [idle_since_ms],
            )?;
            Ok(())
        })
    }

    /// The delivery events of one outgoing message's recipients, in order (the Sent page's
    /// timelines; by recipient, so it reads only this message's rows).
    pub fn web_timeline(
        &self,
        outgoing_id: i64,
    ) -> Result<Vec<crate::store::EventRow>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT r.address, e.hisp_message_id, e.at, e.state, e.source, e.detail, e.applied, e.id
                 FROM recipients r JOIN delivery_events e ON e.recipient_id = r.id
                 WHERE r.outgoing_id = ?1 ORDER BY e.id",
            )
            .and_then(|mut s| {
                s.query_map([outgoing_id], |r| {
                    Ok(crate::store::EventRow {
                        message_id: Some(outgoing_id),
                        recipient: r.get(0)?,
                        hisp_message_id: r.get(1)?,
                        at: r.get(2)?,
                        state: r.get(3)?,
                        source: r.get(4)?,
                        detail: r.get(5)?,
                        applied: r.get(6)?,
                        event_id: r.get(7)?,
                    })
                })?
                .collect()
            })
            .map_err(|e| self.err(e))
    }

    /// The second factor was right: the half-open session is replaced by a full one under a
    /// new token (no session fixation), and an enrolment stores its secret, in one transaction
    /// with the login's audit row.
    pub fn web_session_complete(
        &mut self,
        user: &WebUser,
        c: &Completion<'_>,
    ) -> Result<bool, StoreError> {
        self.write(|tx| {
            // The step check and update together: a code seen once is refused after.
            let n = tx.execute(
                "UPDATE web_users SET totp_last_step = ?2, totp_secret = coalesce(?3, totp_secret)
                 WHERE id = ?1 AND totp_last_step < ?2",
                params![user.id, c.step, c.enrolled],
            )?;
            if n == 0 {
                return Ok(false);
            }
            tx.execute("DELETE FROM web_sessions WHERE token_hash = ?1", [c.old_hash])?;
            tx.execute(
                "INSERT INTO web_sessions (token_hash, user_id, csrf, stage, created_ms, last_seen_ms)
                 VALUES (?1, ?2, ?3, 'full', ?4, ?4)",
                params![c.new_hash, user.id, c.csrf, c.now_ms],
            )?;
            tx.execute(
                "INSERT INTO web_login_attempts (at_ms, name, ok) VALUES (?1, ?2, 1)",
                params![c.now_ms, user.name],
            )?;
            let action = if c.enrolled.is_some() { "web enrol" } else { "web login" };
            record(tx, &user.name, action, None, None)?;
            Ok(true)
        })
    }

    pub fn web_session_end(&mut self, token_hash: &str, actor: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            if tx.execute(
                "DELETE FROM web_sessions WHERE token_hash = ?1",
                [token_hash],
            )? > 0
            {
                record(tx, actor, "web logoff", None, None)?;
            }
            Ok(())
        })
    }

    /// Received messages of `accounts`, unread first then newest, at most `limit`.
    pub fn web_inbox(
        &self,
        accounts: &[String],
        filter: &InboxFilter,
        limit: i64,
    ) -> Result<Vec<InboxRow>, StoreError> {
        let mut cond = format!("i.account IN ({})", placeholders(5, accounts.len()));
        if filter.sender.is_some() {
            cond.push_str(" AND i.sender LIKE '%' || ?1 || '%'");
        }
        if filter.patient.is_some() {
            cond.push_str(
                " AND i.id IN (SELECT a.incoming_id FROM attachments a JOIN documents d ON d.attachment_id = a.id
                    JOIN patients p ON p.id = d.patient_id
                    WHERE p.given LIKE '%' || ?2 || '%' OR p.family LIKE '%' || ?2 || '%')",
            );
        }
        if filter.from_date.is_some() {
            cond.push_str(" AND i.received_at >= ?3");
        }
        if filter.to_date.is_some() {
            // A day given as "2026-12-01" includes all of that day.
            cond.push_str(" AND i.received_at < ?4 || '~'");
        }
        // Unread first: two newest-first scans, the second only run when the first found fewer
        // than `limit`, so a large inbox is never sorted whole.
        let read = "EXISTS (SELECT 1 FROM audit_log l WHERE l.message_ref = 'in:' || i.id AND l.action = 'mark-read')";
        let part = |is_read: bool| {
            format!(
                "SELECT * FROM (SELECT i.id, i.received_at, i.account, i.sender, i.subject, i.quarantine_reason, {},
                    (SELECT count(*) FROM attachments a WHERE a.incoming_id = i.id),
                    (SELECT count(*) FROM attachments a WHERE a.incoming_id = i.id AND a.ingest_error IS NOT NULL),
                    (SELECT count(*) FROM attachments a WHERE a.incoming_id = i.id AND a.ingest_state = 'pending')
                 FROM incoming i WHERE {cond} AND {}{read} ORDER BY i.id DESC LIMIT ?5)",
                is_read as i32,
                if is_read { "" } else { "NOT " }
            )
        };
        let sql = format!("{} UNION ALL {} LIMIT ?5", part(false), part(true));
        let mut values: Vec<&dyn rusqlite::ToSql> = vec![
            &filter.sender,
            &filter.patient,
            &filter.from_date,
            &filter.to_date,
            &limit,
        ];
        let none: Option<String> = None;
        if accounts.is_empty() {
            values.push(&none);
        }
        values.extend(accounts.iter().map(|a| a as &dyn rusqlite::ToSql));
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_map(values.as_slice(), |r| {
                    Ok(InboxRow {
                        id: r.get(0)?,
                        received_at: r.get(1)?,
                        account: r.get(2)?,
                        sender: r.get(3)?,
                        subject: r.get(4)?,
                        quarantine_reason: r.get(5)?,
                        read: r.get(6)?,
                        attachments: r.get(7)?,
                        ingest_failures: r.get(8)?,
                        pending: r.get(9)?,
                    })
                })?
                .collect()
            })
            .map_err(|e| self.err(e))
    }

    /// Outgoing messages of `accounts`, newest first, at most `limit`.
    pub fn web_sent(&self, accounts: &[String], limit: i64) -> Result<Vec<SentRow>, StoreError> {
        let sql = format!(
            "SELECT id, created_at, account, sender, subject, state, last_error, final_delivery
             FROM outgoing WHERE account IN ({}) ORDER BY id DESC LIMIT ?1",
            placeholders(1, accounts.len())
        );
        let none: Option<String> = None;
        let mut values: Vec<&dyn rusqlite::ToSql> = vec![&limit];
        if accounts.is_empty() {
            values.push(&none);
        }
        values.extend(accounts.iter().map(|a| a as &dyn rusqlite::ToSql));
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_map(values.as_slice(), |r| {
                    Ok(SentRow {
                        id: r.get(0)?,
                        created_at: r.get(1)?,
                        account: r.get(2)?,
                        sender: r.get(3)?,
                        subject: r.get(4)?,
                        state: r.get(5)?,
                        last_error: r.get(6)?,
                        final_delivery: r.get(7)?,
                    })
                })?
                .collect()
            })
            .map_err(|e| self.err(e))
    }

    pub fn web_sent_one(&self, id: i64) -> Result<Option<SentRow>, StoreError> {
        self.conn
            .query_row(
                "SELECT id, created_at, account, sender, subject, state, last_error, final_delivery
                 FROM outgoing WHERE id = ?1",
                [id],
                |r| {
                    Ok(SentRow {
                        id: r.get(0)?,
                        created_at: r.get(1)?,
                        account: r.get(2)?,
                        sender: r.get(3)?,
                        subject: r.get(4)?,
                        state: r.get(5)?,
                        last_error: r.get(6)?,
                        final_delivery: r.get(7)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The highest delivery event id, so the Sent page's live stream knows when to redraw.
    pub fn web_last_event(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "SELECT coalesce(max(id), 0) FROM delivery_events",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    const DOC_SELECT: &'static str =
        "SELECT d.id, d.kind, d.title, d.effective_time, d.patient_id,
                trim(coalesce(p.given, '') || ' ' || coalesce(p.family, '')), a.incoming_id, i.account
         FROM documents d LEFT JOIN patients p ON p.id = d.patient_id
         LEFT JOIN attachments a ON a.id = d.attachment_id LEFT JOIN incoming i ON i.id = a.incoming_id";

    fn doc_rows(&self, cond: &str, value: i64) -> Result<Vec<DocumentRow>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "{} WHERE {cond} ORDER BY d.effective_time DESC, d.id DESC",
                Self::DOC_SELECT
            ))
            .and_then(|mut s| {
                s.query_map([value], |r| {
                    Ok(DocumentRow {
                        id: r.get(0)?,
                        kind: r.get(1)?,
                        title: r.get(2)?,
                        effective_time: r.get(3)?,
                        patient_id: r.get(4)?,
                        patient_name: r.get::<_, Option<String>>(5)?.filter(|n| !n.is_empty()),
                        incoming_id: r.get(6)?,
                        account: r.get(7)?,
                    })
                })?
                .collect()
            })
            .map_err(|e| self.err(e))
    }

    /// The documents a received message became.
    pub fn web_documents_of_message(
        &self,
        incoming_id: i64,
    ) -> Result<Vec<DocumentRow>, StoreError> {
        self.doc_rows("a.incoming_id = ?1", incoming_id)
    }

    pub fn web_documents_of_patient(
        &self,
        patient_id: i64,
    ) -> Result<Vec<DocumentRow>, StoreError> {
        self.doc_rows("d.patient_id = ?1", patient_id)
    }

    pub fn web_document(&self, id: i64) -> Result<Option<DocumentRow>, StoreError> {
        Ok(self.doc_rows("d.id = ?1", id)?.into_iter().next())
    }

    /// The message an attachment belongs to.
    pub fn web_attachment_message(&self, attachment_id: i64) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row(
                "SELECT incoming_id FROM attachments WHERE id = ?1",
                [attachment_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Owes the sender a read receipt (the `displayed` MDN `directd show --mark-read` owes)
    /// and records the mark-read, in one transaction.
    pub fn web_mark_read(&mut self, actor: &str, incoming_id: i64) -> Result<MarkRead, StoreError> {
        self.write(|tx| {
            let owed = super::mdn_outbox::owe_on(tx, incoming_id, crate::mdn::Disposition::Displayed)?;
            let outcome = if owed {
                MarkRead::Queued
            } else {
                let (raw, mdn_to, displayed): (bool, bool, bool) = tx.query_row(
                    "SELECT raw IS NOT NULL, mdn_to IS NOT NULL,
                            EXISTS (SELECT 1 FROM mdn_outbox m WHERE m.incoming_id = i.id AND m.disposition = 'displayed')
                     FROM incoming i WHERE id = ?1",
                    [incoming_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?;
                match (displayed, raw, mdn_to) {
                    (true, _, _) => MarkRead::AlreadyOwed,
                    (false, false, _) => MarkRead::NotPossible,
                    _ => MarkRead::NotRequested,
                }
            };
            let detail = match outcome {
                MarkRead::Queued => "read receipt queued",
                MarkRead::AlreadyOwed => "read receipt already owed",
                MarkRead::NotRequested => "no read receipt requested",
                MarkRead::NotPossible => "transport carries no read receipts",
            };
            record(tx, actor, "mark-read", Some(&format!("in:{incoming_id}")), Some(detail))?;
            Ok(outcome)
        })
    }

    /// An unstructured document's body (inline, or the attachment it references) and its
    /// media type, for the browser's own viewer: the first of [`Store::document_files`] the
    /// store has the bytes of (the inline body comes first).
    pub fn web_document_file(&self, document_id: i64) -> Result<Option<DocumentFile>, StoreError> {
        Ok(self.document_files(document_id)?.into_iter().find_map(|f| {
            f.data.map(|data| DocumentFile {
                data,
                media_type: f.media_type,
            })
        }))
    }

    /// The audit rows about one message (`in:ID`, `out:ID`), oldest first.
    pub fn audit_rows_for(&self, message_ref: &str) -> Result<Vec<AuditRow>, StoreError> {
        self.audit_query("WHERE message_ref = ?1 ORDER BY id", &message_ref)
    }

    /// The newest `limit` audit rows, newest first.
    pub fn web_audit_recent(&self, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        self.audit_query("ORDER BY id DESC LIMIT ?1", &limit)
    }

    fn audit_query(
        &self,
        tail: &str,
        value: &dyn rusqlite::ToSql,
    ) -> Result<Vec<AuditRow>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT at, actor, action, message_ref, detail FROM audit_log {tail}"
            ))
            .and_then(|mut s| {
                s.query_map([value], |r| {
                    Ok(AuditRow {
                        at: r.get(0)?,
                        actor: r.get(1)?,
                        action: r.get(2)?,
                        message_ref: r.get(3)?,
                        detail: r.get(4)?,
                    })
                })?
                .collect()
            })
            .map_err(|e| self.err(e))
    }

    /// Queues an outgoing message as `directd send` does, with its audit row in the same
    /// transaction.
    pub fn web_enqueue(&mut self, actor: &str, m: &NewOutgoing) -> Result<i64, StoreError> {
        self.write(|tx| {
            let id = super::outbox::insert_outgoing(tx, m, &[])?;
            record(
                tx,
                actor,
                "send",
                Some(&format!("out:{id}")),
                Some("web console"),
            )?;
            Ok(id)
        })
    }
}
