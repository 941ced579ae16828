//! The console's HTML. maud escapes every value it inserts, so text from messages and
//! documents (subjects, names, narrative) can never become markup; nothing here builds HTML
//! from strings by hand.

use maud::{html, Markup, DOCTYPE};

use crate::cli::ccda::render::DocumentView;
use crate::store::web::{DocumentRow, InboxFilter, InboxRow, Role, SentRow, WebUser};
use crate::store::{AuditRow, EventRow, IncomingDetail, RecipientRow};

/// Who is looking, for the navigation bar and the forms' CSRF field.
pub struct Viewer<'a> {
    pub user: &'a WebUser,
    pub csrf: &'a str,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Inbox,
    Sent,
    Send,
    Audit,
    Users,
}

/// A stored RFC 3339 UTC time as people read it ("2026-12-02 01:53:23 UTC"), machine-readable
/// in the element's datetime.
fn when(t: &str) -> Markup {
    let shown = match t.strip_suffix('Z') {
        Some(utc) => format!("{} UTC", utc.replacen('T', " ", 1)),
        None => t.replacen('T', " ", 1),
    };
    html! { time datetime=(t) { (shown) } }
}

fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · directd" }
                link rel="stylesheet" href="/static/style.css";
            }
            body { (body) }
        }
    }
}

pub fn layout(v: &Viewer<'_>, tab: Tab, title: &str, body: Markup) -> Markup {
    let link = |t: Tab, href: &str, label: &str| {
        html! { a href=(href) class=[(tab == t).then_some("here")] { (label) } }
    };
    bare(
        title,
        html! {
            header.top {
                span.brand { "directd" }
                nav {
                    (link(Tab::Inbox, "/inbox", "Inbox"))
                    (link(Tab::Sent, "/sent", "Sent"))
                    @if v.user.role >= Role::Sender { (link(Tab::Send, "/send", "Send")) }
                    @if v.user.role == Role::Admin {
                        (link(Tab::Audit, "/audit", "Audit"))
                        (link(Tab::Users, "/users", "Users"))
                    }
                }
                div.who {
                    span { (v.user.name) " · " (v.user.role.as_str()) }
                    form method="post" action="/logout" {
                        (csrf_field(v.csrf))
                        button type="submit" id="logoff" { "Log off" }
                    }
                }
            }
            main { (body) }
            script src="/static/app.js" defer {}
        },
    )
}

pub fn login(csrf: &str, error: Option<&str>) -> Markup {
    bare(
        "Log in",
        html! {
            main.login {
                div.card {
                    h1 { "directd web console" }
                    @if let Some(e) = error { div.alert role="alert" { (e) } }
                    form.stack method="post" action="/login" {
                        (csrf_field(csrf))
                        label { "User name" input type="text" name="name" id="name" autocomplete="username" required; }
                        label { "Password" input type="password" name="password" id="password" autocomplete="current-password" required; }
                        button type="submit" id="login" { "Log in" }
                    }
                }
            }
        },
    )
}

/// The second step: a code, and at first login the secret to enrol first.
pub fn mfa(csrf: &str, enrol_secret: Option<&str>, error: Option<&str>) -> Markup {
    bare(
        "Second factor",
        html! {
            main.login {
                div.card {
                    @if let Some(secret) = enrol_secret {
                        h1 { "Set up your second factor" }
                        p { "Scan this code with an authenticator app (TOTP, 6 digits, 30 seconds), then type the code it shows." }
                        img.qr src="/mfa/qr.svg" alt="QR code of the TOTP secret";
                        p { "Or enter the secret by hand:" br; code.secret id="totp-secret" { (secret) } }
                    } @else {
                        h1 { "Second factor" }
                        p { "Type the 6-digit code from your authenticator app." }
                    }
                    @if let Some(e) = error { div.alert role="alert" { (e) } }
                    form.stack method="post" action="/mfa" {
                        (csrf_field(csrf))
                        label { "Code" input type="text" name="code" id="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" required; }
                        button type="submit" id="verify" { "Verify" }
                    }
                }
            }
        },
    )
}

pub fn message_state(m: &InboxRow) -> Markup {
    html! {
        @if let Some(q) = &m.quarantine_reason {
            span.badge.bad { "quarantined" } " " span.muted { (q) }
        } @else if m.ingest_failures > 0 {
            span.badge.warn { (m.ingest_failures) " not ingested" }
        } @else if m.pending > 0 {
            span.badge { "ingesting" }
        } @else if m.attachments > 0 {
            span.badge.ok { "ingested" }
        } @else {
            span.muted { "—" }
        }
    }
}

pub fn inbox(v: &Viewer<'_>, rows: &[InboxRow], f: &InboxFilter, limit: i64) -> Markup {
    let val = |o: &Option<String>| o.clone().unwrap_or_default();
    layout(
        v,
        Tab::Inbox,
        "Inbox",
        html! {
            h1 { "Inbox" }
            form.search method="get" action="/inbox" {
                label { "Sender" input type="search" name="sender" value=(val(&f.sender)); }
                label { "Patient" input type="search" name="patient" value=(val(&f.patient)); }
                label { "Received from" input type="date" name="from" value=(val(&f.from_date)); }
                label { "to" input type="date" name="to" value=(val(&f.to_date)); }
                button type="submit" { "Search" }
            }
            @if rows.is_empty() {
                p.muted { "No messages." }
            } @else {
                table id="inbox" {
                    thead { tr { th { "From" } th { "Subject" } th { "Received" } th { "Account" } th.num { "Files" } th { "State" } } }
                    tbody {
                        @for m in rows {
                            tr class={ @if !m.read { "unread " } @if m.quarantine_reason.is_some() { "quarantined" } } {
                                td { (m.sender) }
                                td { a href={ "/message/" (m.id) } { (m.subject.as_deref().unwrap_or("(no subject)")) } }
                                td { (when(&m.received_at)) }
                                td.muted { (m.account) }
                                td.num { (m.attachments) }
                                td { (message_state(m)) }
                            }
                        }
                    }
                }
                @if rows.len() as i64 >= limit { p.muted { "Showing the first " (limit) "; narrow the search to see others." } }
            }
        },
    )
}

/// A notice shown after an action (mark-read's outcome).
pub fn message(
    v: &Viewer<'_>,
    m: &IncomingDetail,
    docs: &[DocumentRow],
    mdns: &[(String, Option<String>)],
    read: bool,
    notice: Option<&str>,
) -> Markup {
    let signers: Vec<serde_json::Value> = m
        .verdict
        .as_deref()
        .and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok())
        .and_then(|v| v["signers"].as_array().cloned())
        .unwrap_or_default();
    layout(
        v,
        Tab::Inbox,
        "Message",
        html! {
            h1 { (m.subject.as_deref().unwrap_or("(no subject)")) }
            @if let Some(n) = notice { div.note role="status" id="notice" { (n) } }
            @if let Some(q) = &m.quarantine_reason { div.alert { strong { "Quarantined: " } (q) } }
            div.card {
                dl.facts {
                    dt { "From" } dd { (m.sender) }
                    dt { "To" } dd { (m.recipient) }
                    dt { "Date" } dd { (m.date.as_deref().unwrap_or("-")) }
                    dt { "Received" } dd { (when(&m.received_at)) }
                    dt { "Account" } dd { (m.account) }
                    dt { "HISP id" } dd { code { (m.hisp_message_id) } }
                    @if let Some(id) = &m.header_message_id { dt { "Message-ID" } dd { code { (id) } } }
                    @if m.verdict.is_some() {
                        dt { "Verdict" }
                        dd {
                            @if signers.is_empty() { span.badge.warn { "not signed" } }
                            @for s in &signers {
                                span.badge.ok { "signed" } " "
                                (s["subject"].as_str().unwrap_or("?")) " (" (s["digest"].as_str().unwrap_or("?")) "), trusted by "
                                (s["trusted_by"].as_str().unwrap_or("?")) br;
                            }
                        }
                    }
                    @for (d, sent) in mdns {
                        dt { "MDN" } dd { (d) " " @match sent { Some(t) => { "sent " (when(t)) }, None => { "owed (the daemon sends it)" } } }
                    }
                }
            }
            h2 { "Body" }
            @match &m.body_text {
                Some(t) if !t.is_empty() => { pre.body id="body" { (t) } },
                Some(_) => { p.muted { "(empty body)" } },
                None => { p.muted { "(body is " (m.body.len()) " bytes of " (m.body_type) ")" } },
            }
            h2 { "Attachments" }
            @if m.attachments.is_empty() { p.muted { "None." } } @else {
                table {
                    thead { tr { th { "File" } th { "Type" } th.num { "Bytes" } th { "Ingest" } } }
                    tbody {
                        @for a in &m.attachments {
                            tr {
                                td { a href={ "/attachment/" (a.id) } download { (a.filename) } }
                                td.muted { (a.declared_type) }
                                td.num { (a.size) }
                                td { (a.ingest_state) @if let Some(e) = &a.ingest_error { br; span.muted { (e) } } }
                            }
                        }
                    }
                }
            }
            @if !docs.is_empty() {
                h2 { "Documents" }
                ul { @for d in docs { li { (doc_link(d)) } } }
            }
            @if m.quarantine_reason.is_none() {
                h2 { "Read receipt" }
                @if read { p.muted { "Marked as read." } }
                form method="post" action={ "/message/" (m.id) "/read" } {
                    (csrf_field(v.csrf))
                    button type="submit" id="mark-read" { "Mark as read" }
                }
            }
        },
    )
}

fn doc_link(d: &DocumentRow) -> Markup {
    html! {
        a href={ "/document/" (d.id) } { (d.title.as_deref().unwrap_or("(untitled)")) }
        " " span.muted { (d.kind.replace('_', " ")) @if let Some(t) = &d.effective_time { ", " (t) } }
        @if let (Some(p), Some(name)) = (d.patient_id, &d.patient_name) {
            " — patient " a href={ "/patient/" (p) } { (name) }
        }
    }
}

fn state_badge(state: &str) -> Markup {
    let class = match state {
        "failed" | "timed_out" | "expired" => "badge bad",
        "dispatched" | "read" | "displayed" => "badge ok",
        "queued" | "submitted" | "processed" => "badge",
        _ => "badge warn",
    };
    html! { span class=(class) { (state.replace('_', " ")) } }
}

pub struct SentMessage {
    pub row: SentRow,
    pub recipients: Vec<(RecipientRow, Vec<EventRow>)>,
}

pub fn sent(v: &Viewer<'_>, messages: &[SentMessage]) -> Markup {
    layout(
        v,
        Tab::Sent,
        "Sent",
        html! {
            h1 { "Sent " span.live id="live-mark" {} }
            div id="sent-live" {
                @if messages.is_empty() { p.muted { "Nothing sent yet." } }
                @for m in messages {
                    div.card id={ "out-" (m.row.id) } {
                        div {
                            strong { (m.row.subject.as_deref().unwrap_or("(no subject)")) }
                            " " span.muted { "#" (m.row.id) " from " (m.row.sender) ", " (when(&m.row.created_at)) " · outbox " }
                            (state_badge(&m.row.state))
                            @if m.row.final_delivery { " " span.badge { "final delivery asked" } }
                        }
                        @if let Some(e) = &m.row.last_error { div.alert { (e) } }
                        @for (r, events) in &m.recipients {
                            @let bad = matches!(r.state.as_str(), "failed" | "timed_out" | "expired");
                            div class={ "recipient" @if bad { " failed" } } data-state=(r.state) {
                                (r.address) " " (state_badge(&r.state))
                                @if let Some(why) = &r.reason { " " span.muted { (why) } }
                                ol.timeline {
                                    @for e in events {
                                        li class=[(!e.applied).then_some("muted")] title=[e.detail.as_deref()] {
                                            (e.state.replace('_', " ")) " " span.muted { (when(&e.at)) " · " (e.source) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

pub fn document(v: &Viewer<'_>, d: &DocumentView, row: &DocumentRow, has_file: bool) -> Markup {
    layout(
        v,
        Tab::Inbox,
        "Document",
        html! {
            h1 { (d.title) }
            p.muted {
                (d.kind) " · effective " (d.effective) " · sha256 " code { (d.sha256_short) }
                @if let Some(m) = row.incoming_id { " · from " a href={ "/message/" (m) } { "message " (m) } }
            }
            @if let Some(p) = &d.patient {
                div.card {
                    h2 { "Patient: " @match row.patient_id { Some(id) => { a href={ "/patient/" (id) } id="patient-link" { (p.name) } }, None => { (p.name) } } }
                    dl.facts {
                        dt { "Born" } dd { (p.born) }
                        dt { "Sex" } dd { (p.sex) }
                        @for id in &p.ids { dt { "Identifier" } dd { (id) } }
                    }
                }
            }
            div.card {
                dl.facts {
                    @for a in &d.authors { dt { "Author" } dd { (a) } }
                    @if let Some(c) = &d.custodian { dt { "Custodian" } dd { (c) } }
                    @if let Some(e) = &d.episode {
                        dt { "Episode of care" } dd { (e.what) @for x in &e.details { br; span.muted { (x) } } }
                    }
                    @for p in &d.service_periods { dt { "Service period" } dd { (p) } }
                }
            }
            @if let Some(u) = &d.unstructured {
                div.note { "Unstructured document: " (u) @if has_file { " — " a href={ "/document/" (d.id) "/file" } id="open-file" { "open it in the browser's viewer" } } }
            }
            @for s in &d.sections {
                div.card.section {
                    h2 { (s.title) }
                    @if !s.entries.is_empty() {
                        ul {
                            @for e in &s.entries {
                                li {
                                    @if let Some((first, rest)) = e.split_first() {
                                        (first)
                                        @for l in rest { span.detail { (l) } }
                                    }
                                }
                            }
                        }
                    }
                    @if !s.narrative.is_empty() {
                        div.narrative { @for l in &s.narrative { (l) "\n" } }
                    }
                }
            }
        },
    )
}

pub fn patient(v: &Viewer<'_>, name: &str, docs: &[DocumentRow]) -> Markup {
    layout(
        v,
        Tab::Inbox,
        "Patient",
        html! {
            h1 { "Patient: " (name) }
            table {
                thead { tr { th { "Document" } th { "Type" } th { "Effective" } th { "Message" } } }
                tbody {
                    @for d in docs {
                        tr {
                            td { a href={ "/document/" (d.id) } { (d.title.as_deref().unwrap_or("(untitled)")) } }
                            td.muted { (d.kind.replace('_', " ")) }
                            td { (d.effective_time.as_deref().unwrap_or("-")) }
                            td { @if let Some(m) = d.incoming_id { a href={ "/message/" (m) } { (m) } } }
                        }
                    }
                }
            }
        },
    )
}

/// What the Send form had, to show it again with the error.
#[derive(Default)]
pub struct SendForm {
    pub from: String,
    pub to: String,
    pub cc: String,
    pub subject: String,
    pub body: String,
    pub final_delivery: bool,
}

pub fn send(v: &Viewer<'_>, accounts: &[String], form: &SendForm, error: Option<&str>) -> Markup {
    layout(
        v,
        Tab::Send,
        "Send",
        html! {
            h1 { "Send a message" }
            @if let Some(e) = error { div.alert role="alert" id="send-error" { (e) } }
            @if accounts.is_empty() {
                p.muted { "None of your accounts is configured to send." }
            } @else {
                form.stack method="post" action="/send" enctype="multipart/form-data" {
                    (csrf_field(v.csrf))
                    label { "From"
                        select name="from" id="from" {
                            @for a in accounts { option value=(a) selected[*a == form.from] { (a) } }
                        }
                    }
                    label { "To (Direct addresses, separated by commas or spaces)" input type="text" name="to" id="to" value=(form.to) required; }
                    label { "Cc" input type="text" name="cc" id="cc" value=(form.cc); }
                    label { "Subject" input type="text" name="subject" id="subject" value=(form.subject); }
                    label { "Body" textarea name="body" id="body" { (form.body) } }
                    label { "C-CDA document (XML; checked as ingestion would)" input type="file" name="ccda" id="ccda" accept=".xml,text/xml,application/xml"; }
                    label { "Other file (a PDF, for example)" input type="file" name="attach" id="attach"; }
                    label { span { input type="checkbox" name="final" id="final" value="1" checked[form.final_delivery]; " Ask for final-delivery confirmation (dispatched)" } }
                    button type="submit" id="send" { "Send" }
                }
            }
        },
    )
}

pub fn audit(v: &Viewer<'_>, rows: &[AuditRow]) -> Markup {
    layout(
        v,
        Tab::Audit,
        "Audit",
        html! {
            h1 { "Audit trail" }
            p.muted { "The newest " (rows.len()) " entries, newest first." }
            table id="audit" {
                thead { tr { th { "When" } th { "Who" } th { "Action" } th { "Message" } th { "Detail" } } }
                tbody {
                    @for r in rows {
                        tr { td { (when(&r.at)) } td { (r.actor) } td { (r.action) } td { (r.message_ref.as_deref().unwrap_or("")) } td.muted { (r.detail.as_deref().unwrap_or("")) } }
                    }
                }
            }
        },
    )
}

pub fn users(v: &Viewer<'_>, users: &[WebUser]) -> Markup {
    layout(
        v,
        Tab::Users,
        "Users",
        html! {
            h1 { "Users" }
            p.muted { "Managed with " code { "directd users" } " on the server." }
            table {
                thead { tr { th { "Name" } th { "Role" } th { "Accounts" } th { "Second factor" } th { "State" } } }
                tbody {
                    @for u in users {
                        tr {
                            td { (u.name) } td { (u.role.as_str()) } td { (u.accounts.join(", ")) }
                            td { @if u.totp_secret.is_some() { span.badge.ok { "enrolled" } } @else { span.badge.warn { "at next login" } } }
                            td { @if u.disabled { span.badge.bad { "disabled" } } @else { "active" } }
                        }
                    }
                }
            }
        },
    )
}

pub fn error(status: u16, what: &str) -> Markup {
    bare(
        what,
        html! {
            main.login { div.card { h1 { (status) " · " (what) } p { a href="/inbox" { "Back to the inbox" } } } }
        },
    )
}
