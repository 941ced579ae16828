//! Request handling: the session cookie and its idle timeout, CSRF on every POST, which
//! accounts a user may see (anything else answers 404, as if it did not exist), and one audit
//! row per view, download, send and mark-read.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::Markup;
use serde::Deserialize;

use super::auth;
use super::pages::{self, SendForm, SentMessage, Viewer};
use super::App;
use crate::store::web::{
    Completion, InboxFilter, MarkRead, Role, SessionStage, WebSession, WebUser,
};
use crate::store::{NewOutgoing, Store, StoreError};

const SESSION_COOKIE: &str = "directd_session";
const LOGIN_COOKIE: &str = "directd_login";
const INBOX_LIMIT: i64 = 200;
const SENT_LIMIT: i64 = 50;

/// Scripts and styles from this origin only, never inline; nothing may frame the console.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// A PDF opened in the browser's own viewer needs its plugin; still nothing else.
const PDF_CSP: &str =
    "default-src 'none'; object-src 'self'; plugin-types application/pdf; frame-ancestors 'none'";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Why a request ends without its page.
enum Refusal {
    /// No (live) session: to the login page.
    Login,
    /// Half logged in: to the second-factor page.
    Mfa,
    NotFound,
    Forbidden(&'static str),
    BadRequest(String),
    Internal(String),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => Refusal::NotFound,
            e => Refusal::Internal(e.to_string()),
        }
    }
}

impl From<auth::AuthError> for Refusal {
    fn from(e: auth::AuthError) -> Self {
        Refusal::Internal(e.to_string())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Login => Redirect::to("/login").into_response(),
            Refusal::Mfa => Redirect::to("/mfa").into_response(),
            Refusal::NotFound => html(StatusCode::NOT_FOUND, pages::error(404, "Not found")),
            Refusal::Forbidden(why) => html(StatusCode::FORBIDDEN, pages::error(403, why)),
            Refusal::BadRequest(why) => html(StatusCode::BAD_REQUEST, pages::error(400, &why)),
            Refusal::Internal(why) => {
                // Store errors name files and SQLite conditions, never message content.
                tracing::error!(error = %why, "web request failed");
                html(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    pages::error(500, "Something went wrong; the server log says what"),
                )
            }
        }
    }
}

type Answer = Result<Response, Refusal>;

fn html(status: StatusCode, m: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        m.into_string(),
    )
        .into_response()
}

fn page(m: Markup) -> Answer {
    Ok(html(StatusCode::OK, m))
}

/// A logged-in user with their session.
struct Authed {
    user: WebUser,
    session: WebSession,
}

impl Authed {
    fn viewer(&self) -> Viewer<'_> {
        Viewer {
            user: &self.user,
            csrf: &self.session.csrf,
        }
    }

    /// Whether the user is assigned `account`; what they are not assigned does not exist for
    /// them (404, never 403, so ids of other accounts reveal nothing).
    fn sees(&self, account: Option<&str>) -> Result<(), Refusal> {
        match account {
            Some(a) if self.user.accounts.iter().any(|x| x == a) => Ok(()),
            _ => Err(Refusal::NotFound),
        }
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn set_cookie(app: &App, name: &str, value: &str, path: &str, max_age: Option<i64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
    if app.secure() {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The session the cookie names, whatever its stage, refreshed unless `touch` is false.
fn session_of(
    app: &App,
    store: &mut Store,
    headers: &HeaderMap,
    touch: bool,
) -> Result<Option<(String, WebSession)>, Refusal> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let hash = auth::token_hash(&token);
    let idle_since = now_ms() - app.web.idle_timeout.as_millis() as i64;
    let Some(s) = store.web_session(&hash, idle_since)? else {
        return Ok(None);
    };
    // A write per request would cost a disk sync each; a session is marked used again once a
    // tenth of its idle timeout has passed (at most every 30 s), which logs off on time still.
    let refresh = (app.web.idle_timeout.as_millis() as i64 / 10).min(30_000);
    if touch && now_ms() - s.last_seen_ms >= refresh {
        store.web_session_touch(&hash, now_ms(), idle_since)?;
    }
    Ok(Some((hash, s)))
}

fn authed(
    app: &App,
    store: &mut Store,
    headers: &HeaderMap,
    touch: bool,
) -> Result<Authed, Refusal> {
    let (_, session) = session_of(app, store, headers, touch)?.ok_or(Refusal::Login)?;
    if session.stage != SessionStage::Full {
        return Err(Refusal::Mfa);
    }
    let user = store
        .web_user_by_id(session.user_id)?
        .filter(|u| !u.disabled)
        .ok_or(Refusal::Login)?;
    Ok(Authed { user, session })
}

fn check_csrf(a: &Authed, given: Option<&str>) -> Result<(), Refusal> {
    match given {
        Some(t) if auth::same(t, &a.session.csrf) => Ok(()),
        _ => Err(Refusal::Forbidden(
            "The form's security token is missing or stale; reload the page and try again",
        )),
    }
}

/// Runs `f` with the store on a blocking thread (SQLite waits for locks synchronously).
async fn with_store<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&App, &mut Store) -> T + Send + 'static,
) -> T {
    let app = app.clone();
    tokio::task::spawn_blocking(move || {
        let mut store = app.store.lock().unwrap_or_else(|p| p.into_inner());
        f(&app, &mut store)
    })
    .await
    .expect("a store task panicked")
}

/// A page for a logged-in user.
async fn logged_in(
    app: &Arc<App>,
    headers: HeaderMap,
    f: impl FnOnce(&App, &mut Store, &Authed) -> Answer + Send + 'static,
) -> Response {
    with_store(app, move |app, store| {
        let a = authed(app, store, &headers, true)?;
        f(app, store, &a)
    })
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/inbox") }))
        .route("/login", get(login_page).post(login))
        .route("/mfa", get(mfa_page).post(mfa))
        .route("/mfa/qr.svg", get(mfa_qr))
        .route("/logout", post(logout))
        .route("/inbox", get(inbox))
        .route("/message/{id}", get(message))
        .route("/message/{id}/read", post(mark_read))
        .route("/attachment/{id}", get(attachment))
        .route("/sent", get(sent))
        .route("/sent/events", get(sent_events))
        .route("/document/{id}", get(document))
        .route("/document/{id}/file", get(document_file))
        .route("/patient/{id}", get(patient))
        // Only the Send form takes files; every other request body stays small.
        .route(
            "/send",
            get(send_page).post(send).layer(DefaultBodyLimit::max(
                crate::compose::MAX_FILE as usize * 2 + 1024 * 1024,
            )),
        )
        .route("/audit", get(audit))
        .route("/users", get(users))
        .route(
            "/static/style.css",
            get(|| async { asset("text/css", include_str!("static/style.css")) }),
        )
        .route(
            "/static/app.js",
            get(|| async { asset("text/javascript", include_str!("static/app.js")) }),
        )
        .fallback(|| async { Refusal::NotFound.into_response() })
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            headers_and_log,
        ))
        .with_state(app)
}

fn asset(kind: &'static str, text: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        text,
    )
        .into_response()
}

/// Security headers on every answer, and one log line per request: method, route pattern (not
/// the path or query, which could carry a search for a patient's name) and status.
async fn headers_and_log(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "(unmatched)".into());
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        // Pages carry PHI: no copies in shared or browser caches.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if app.secure() {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    tracing::info!(%method, route = %route, status = res.status().as_u16(), "web request");
    res
}

async fn login_page(State(app): State<Arc<App>>) -> Response {
    match auth::random_token() {
        Ok(t) => login_form(&app, &t, None, StatusCode::OK),
        Err(e) => Refusal::from(e).into_response(),
    }
}

/// The login form with a fresh double-submit token (there is no session to hold one yet).
fn login_form(app: &App, token: &str, error: Option<&str>, status: StatusCode) -> Response {
    let mut res = html(status, pages::login(token, error));
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(app, LOGIN_COOKIE, token, "/login", None),
    );
    res
}

#[derive(Deserialize)]
struct LoginForm {
    name: String,
    password: String,
    csrf: Option<String>,
}

async fn login(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let given = f.csrf.clone().unwrap_or_default();
    if !cookie(&headers, LOGIN_COOKIE).is_some_and(|c| !given.is_empty() && auth::same(&c, &given))
    {
        return Refusal::Forbidden(
            "The login form's security token is missing or stale; reload the page",
        )
        .into_response();
    }
    let result: Result<Result<String, (&'static str, StatusCode)>, Refusal> =
        with_store(&app, move |_app, store| {
            let (failures, last) = store.web_login_failures(&f.name)?;
            let wait = auth::backoff_ms(failures);
            if wait > 0 && now_ms() < last + wait {
                return Ok(Err((
                    "Too many failed attempts for this user; wait a few minutes and try again",
                    StatusCode::TOO_MANY_REQUESTS,
                )));
            }
            let user = store.web_user(&f.name)?;
            let hash = user
                .as_ref()
                .map(|u| u.password_hash.as_str())
                .unwrap_or(auth::dummy_hash());
            let ok = auth::verify_password(hash, &f.password);
            let user = match user {
                Some(u) if ok && !u.disabled => u,
                _ => {
                    store.web_login_attempt(&f.name, false, now_ms())?;
                    return Ok(Err((
                        "Wrong user name or password",
                        StatusCode::UNAUTHORIZED,
                    )));
                }
            };
            let token = auth::random_token()?;
            let (stage, pending) = match user.totp_secret {
                Some(_) => (SessionStage::Password, None),
                None => (SessionStage::Enrol, Some(auth::random_bytes(20)?)),
            };
            store.web_session_create(
                &auth::token_hash(&token),
                user.id,
                &auth::random_token()?,
                stage,
                pending.as_deref(),
                now_ms(),
            )?;
            Ok(Ok(token))
        })
        .await;
    match result {
        Ok(Ok(token)) => {
            let mut res = Redirect::to("/mfa").into_response();
            res.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(&app, SESSION_COOKIE, &token, "/", None),
            );
            res
        }
        Ok(Err((why, status))) => match auth::random_token() {
            Ok(t) => login_form(&app, &t, Some(why), status),
            Err(e) => Refusal::from(e).into_response(),
        },
        Err(r) => r.into_response(),
    }
}

/// A session waiting for its second factor, with its user.
fn half_session(
    app: &App,
    store: &mut Store,
    headers: &HeaderMap,
) -> Result<(String, WebSession, WebUser), Refusal> {
    let (hash, s) = session_of(app, store, headers, false)?.ok_or(Refusal::Login)?;
    if s.stage == SessionStage::Full {
        return Err(Refusal::BadRequest("already logged in".into()));
    }
    let user = store.web_user_by_id(s.user_id)?.ok_or(Refusal::Login)?;
    Ok((hash, s, user))
}

async fn mfa_page(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    with_store(&app, move |app, store| {
        let (_, s, _) = half_session(app, store, &headers)?;
        let secret = s.pending_secret.as_deref().map(auth::base32);
        page(pages::mfa(&s.csrf, secret.as_deref(), None))
    })
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

async fn mfa_qr(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    with_store(&app, move |app, store| {
        let (_, s, user) = half_session(app, store, &headers)?;
        let secret = s.pending_secret.ok_or(Refusal::NotFound)?;
        let code = qrcode::QrCode::new(auth::otpauth_uri(&user.name, &secret))
            .map_err(|e| Refusal::Internal(e.to_string()))?;
        let svg = code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .build();
        Ok::<_, Refusal>(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
    })
    .await
    .unwrap_or_else(IntoResponse::into_response)
}

#[derive(Deserialize)]
struct CodeForm {
    code: String,
    csrf: Option<String>,
}

/// The second step's outcome: logged in under a new token, or the form again with why.
enum MfaOutcome {
    Done(String),
    Again {
        csrf: String,
        why: &'static str,
        status: StatusCode,
        shown: Option<String>,
    },
}

async fn mfa(State(app): State<Arc<App>>, headers: HeaderMap, Form(f): Form<CodeForm>) -> Response {
    let result: Result<MfaOutcome, Refusal> = with_store(&app, move |app, store| {
        let (hash, s, user) = half_session(app, store, &headers)?;
        if !f.csrf.as_deref().is_some_and(|c| auth::same(c, &s.csrf)) {
            return Err(Refusal::Forbidden(
                "The form's security token is missing or stale; log in again",
            ));
        }
        let shown = s.pending_secret.as_deref().map(auth::base32);
        let refuse = |why, status| {
            Ok(MfaOutcome::Again {
                csrf: s.csrf.clone(),
                why,
                status,
                shown: shown.clone(),
            })
        };
        let (failures, last) = store.web_login_failures(&user.name)?;
        let wait = auth::backoff_ms(failures);
        if wait > 0 && now_ms() < last + wait {
            return refuse(
                "Too many failed attempts; wait a few minutes and try again",
                StatusCode::TOO_MANY_REQUESTS,
            );
        }
        let secret = match (&s.pending_secret, &user.totp_secret) {
            (Some(p), _) => p.clone(),
            (None, Some(t)) => t.clone(),
            (None, None) => return Err(Refusal::Login),
        };
        let unix = (now_ms() / 1000) as u64;
        let step = auth::totp_check(&secret, &f.code, unix).map(|s| s as i64);
        let token = auth::random_token()?;
        let done = match step {
            Some(step) => store.web_session_complete(
                &user,
                &Completion {
                    old_hash: &hash,
                    new_hash: &auth::token_hash(&token),
                    csrf: &auth::random_token()?,
                    step,
                    enrolled: s.pending_secret.as_deref(),
                    now_ms: now_ms(),
                },
            )?,
            None => false,
        };
        if !done {
            store.web_login_attempt(&user.name, false, now_ms())?;
            return refuse(
                "That code is not right (or was used already); try the next one",
                StatusCode::UNAUTHORIZED,
            );
        }
        Ok(MfaOutcome::Done(token))
    })
    .await;
    match result {
        Ok(MfaOutcome::Done(token)) => {
            let mut res = Redirect::to("/inbox").into_response();
            res.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(&app, SESSION_COOKIE, &token, "/", None),
            );
            res
        }
        Ok(MfaOutcome::Again {
            csrf,
            why,
            status,
            shown,
        }) => html(status, pages::mfa(&csrf, shown.as_deref(), Some(why))),
        Err(r) => r.into_response(),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

async fn logout(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let r = with_store(&app, move |app, store| {
        let (hash, s) = session_of(app, store, &headers, false)?.ok_or(Refusal::Login)?;
        if !f.csrf.as_deref().is_some_and(|c| auth::same(c, &s.csrf)) {
            return Err(Refusal::Forbidden(
                "The form's security token is missing or stale",
            ));
        }
        let name = store
            .web_user_by_id(s.user_id)?
            .map(|u| u.name)
            .unwrap_or_default();
        store.web_session_end(&hash, &name)?;
        Ok(())
    })
    .await;
    match r {
        Ok(()) => {
            let mut res = Redirect::to("/login").into_response();
            res.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(&app, SESSION_COOKIE, "", "/", Some(0)),
            );
            res
        }
        Err(r) => r.into_response(),
    }
}

#[derive(Deserialize, Default)]
struct InboxQuery {
    sender: Option<String>,
    patient: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

async fn inbox(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<InboxQuery>,
) -> Response {
    logged_in(&app, headers, move |_, store, a| {
        let filter = InboxFilter {
            sender: nonempty(q.sender),
            patient: nonempty(q.patient),
            from_date: nonempty(q.from),
            to_date: nonempty(q.to),
        };
        let rows = store.web_inbox(&a.user.accounts, &filter, INBOX_LIMIT)?;
        page(pages::inbox(&a.viewer(), &rows, &filter, INBOX_LIMIT))
    })
    .await
}

fn show_message(store: &mut Store, a: &Authed, id: i64, notice: Option<&str>) -> Answer {
    let m = store.incoming(id)?;
    a.sees(Some(&m.account))?;
    store.audit(&a.user.name, "web view", Some(&format!("in:{id}")), None)?;
    let docs = store.web_documents_of_message(id)?;
    let mdns = store.mdns_for(id)?;
    let read = store
        .audit_rows_for(&format!("in:{id}"))?
        .iter()
        .any(|r| r.action == "mark-read");
    page(pages::message(&a.viewer(), &m, &docs, &mdns, read, notice))
}

async fn message(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    logged_in(&app, headers, move |_, store, a| {
        show_message(store, a, id, None)
    })
    .await
}

async fn mark_read(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    logged_in(&app, headers, move |_, store, a| {
        check_csrf(a, f.csrf.as_deref())?;
        let m = store.incoming(id)?;
        a.sees(Some(&m.account))?;
        if m.quarantine_reason.is_some() {
            return Err(Refusal::BadRequest("This message is quarantined; no read receipt is sent for it".into()));
        }
        let outcome = store.web_mark_read(&a.user.name, id)?;
        let to = m.mdn_to.as_deref().unwrap_or("the sender");
        let notice = match outcome {
            MarkRead::Queued => format!("Marked as read: a read receipt is queued for {to}; the daemon sends it at its next poll."),
            MarkRead::AlreadyOwed => format!("Marked as read; a read receipt to {to} was already queued or sent."),
            MarkRead::NotRequested => "Marked as read; the sender asked for no read receipts.".into(),
            MarkRead::NotPossible => "Marked as read; this message came over phiMail, which carries no read receipts.".into(),
        };
        show_message(store, a, id, Some(&notice))
    })
    .await
}

/// `filename` for a Content-Disposition header: plain ASCII in quotes, and the full name
/// percent-encoded in `filename*`.
fn disposition(kind: &str, name: &str) -> String {
    let safe = crate::cli::show::safe_filename(name, "attachment");
    let ascii: String = safe
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = safe
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

async fn attachment(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    logged_in(&app, headers, move |_, store, a| {
        let msg = store.web_attachment_message(id)?.ok_or(Refusal::NotFound)?;
        let m = store.incoming(msg)?;
        a.sees(Some(&m.account))?;
        let (data, _, filename) = store.attachment_bytes(id)?.ok_or(Refusal::NotFound)?;
        store.audit(
            &a.user.name,
            "web download",
            Some(&format!("in:{msg}")),
            Some(&format!("attachment {id}")),
        )?;
        // Never the sender's declared type: the browser saves it, it does not render it.
        Ok((
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    disposition("attachment", &filename),
                ),
            ],
            Body::from(data),
        )
            .into_response())
    })
    .await
}

fn sent_messages(store: &Store, a: &Authed) -> Result<Vec<SentMessage>, Refusal> {
    let rows = store.web_sent(&a.user.accounts, SENT_LIMIT)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let events = store.web_timeline(row.id)?;
        let recipients = store
            .recipients(row.id)?
            .into_iter()
            .map(|r| {
                let mine = events
                    .iter()
                    .filter(|e| e.recipient.as_deref() == Some(r.address.as_str()))
                    .cloned()
                    .collect();
                (r, mine)
            })
            .collect();
        out.push(SentMessage { row, recipients });
    }
    Ok(out)
}

async fn sent(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    logged_in(&app, headers, move |_, store, a| {
        let messages = sent_messages(store, a)?;
        store.audit(&a.user.name, "web sent", None, None)?;
        page(pages::sent(&a.viewer(), &messages))
    })
    .await
}

/// Server-sent events for the Sent page: `changed` whenever a delivery event was recorded.
/// The stream ends when the session does (logoff, idle timeout); it does not itself keep the
/// session alive.
async fn sent_events(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let first = with_store(&app, {
        let headers = headers.clone();
        move |app, store| -> Result<i64, Refusal> {
            authed(app, store, &headers, false)?;
            Ok(store.web_last_event()?)
        }
    })
    .await;
    let last = match first {
        Ok(l) => l,
        Err(r) => return r.into_response(),
    };
    let stream = futures::stream::unfold((app, headers, last), |(app, headers, last)| async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            let h = headers.clone();
            let now = with_store(&app, move |app, store| -> Result<i64, Refusal> {
                authed(app, store, &h, false)?;
                Ok(store.web_last_event()?)
            })
            .await;
            match now {
                Err(_) => return None,
                Ok(n) if n != last => {
                    let ev = Event::default().event("changed").data(n.to_string());
                    return Some((Ok::<_, std::convert::Infallible>(ev), (app, headers, n)));
                }
                Ok(_) => {}
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn visible_document(
    store: &Store,
    a: &Authed,
    id: i64,
) -> Result<crate::store::web::DocumentRow, Refusal> {
    let row = store.web_document(id)?.ok_or(Refusal::NotFound)?;
    // A document ingested from a file (`directd ingest`) came in no account's message.
    a.sees(row.account.as_deref())?;
    Ok(row)
}

async fn document(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    logged_in(&app, headers, move |_, store, a| {
        let row = visible_document(store, a, id)?;
        let doc = store.load_document(id)?;
        store.audit(
            &a.user.name,
            "web document",
            Some(&format!("doc:{id}")),
            None,
        )?;
        let view = crate::cli::ccda::render::document_view(&doc.summary, &doc.document);
        let has_file =
            doc.document.non_xml_body.is_some() && store.web_document_file(id)?.is_some();
        page(pages::document(&a.viewer(), &view, &row, has_file))
    })
    .await
}

async fn document_file(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    logged_in(&app, headers, move |_, store, a| {
        visible_document(store, a, id)?;
        let file = store.web_document_file(id)?.ok_or(Refusal::NotFound)?;
        let (data, media) = (file.data, file.media_type);
        store.audit(
            &a.user.name,
            "web download",
            Some(&format!("doc:{id}")),
            Some("document file"),
        )?;
        // Only a PDF is shown inline, in the browser's own viewer; anything else is saved.
        let pdf = media.as_deref() == Some("application/pdf") && data.starts_with(b"%PDF-");
        let (kind, disp) = if pdf {
            (
                "application/pdf",
                disposition("inline", &format!("document-{id}.pdf")),
            )
        } else {
            (
                "application/octet-stream",
                disposition("attachment", &format!("document-{id}")),
            )
        };
        Ok((
            [
                (header::CONTENT_TYPE, kind.to_owned()),
                (header::CONTENT_DISPOSITION, disp),
                (header::CONTENT_SECURITY_POLICY, PDF_CSP.to_owned()),
            ],
            Body::from(data),
        )
            .into_response())
    })
    .await
}

async fn patient(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    logged_in(&app, headers, move |_, store, a| {
        let docs: Vec<_> = store
            .web_documents_of_patient(id)?
            .into_iter()
            .filter(|d| a.sees(d.account.as_deref()).is_ok())
            .collect();
        let name = docs
            .iter()
            .find_map(|d| d.patient_name.clone())
            .ok_or(Refusal::NotFound)?;
        store.audit(
            &a.user.name,
            "web patient",
            Some(&format!("patient:{id}")),
            None,
        )?;
        page(pages::patient(&a.viewer(), &name, &docs))
    })
    .await
}

/// The user's accounts that this configuration sends for.
fn send_accounts(app: &App, a: &Authed) -> Vec<String> {
    a.user
        .accounts
        .iter()
        .filter(|x| app.config.account_for(x).is_some())
        .cloned()
        .collect()
}

async fn send_page(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    logged_in(&app, headers, move |app, _, a| {
        if a.user.role < Role::Sender {
            return Err(Refusal::Forbidden("Your role may read, not send"));
        }
        page(pages::send(
            &a.viewer(),
            &send_accounts(app, a),
            &SendForm::default(),
            None,
        ))
    })
    .await
}

/// The Send form's fields as posted (multipart, for the files).
#[derive(Default)]
struct Posted {
    csrf: Option<String>,
    form: SendForm,
    ccda: Option<crate::compose::GivenFile>,
    attach: Option<crate::compose::GivenFile>,
}

async fn read_send_form(mut mp: Multipart) -> Result<Posted, Refusal> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        Refusal::BadRequest(format!("the form could not be read: {e}"))
    };
    let mut p = Posted::default();
    while let Some(field) = mp.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field.file_name().map(str::to_owned);
        let data = field.bytes().await.map_err(bad)?.to_vec();
        let text = || String::from_utf8_lossy(&data).into_owned();
        match name.as_str() {
            "csrf" => p.csrf = Some(text()),
            "from" => p.form.from = text(),
            "to" => p.form.to = text(),
            "cc" => p.form.cc = text(),
            "subject" => p.form.subject = text(),
            "body" => p.form.body = text(),
            "final" => p.form.final_delivery = true,
            "ccda" | "attach" if !data.is_empty() => {
                let f = crate::compose::GivenFile {
                    name: filename.map(|n| crate::cli::show::safe_filename(&n, "attachment")),
                    data,
                };
                if name == "ccda" {
                    p.ccda = Some(f)
                } else {
                    p.attach = Some(f)
                }
            }
            _ => {}
        }
    }
    Ok(p)
}

fn addresses(list: &str) -> Vec<String> {
    list.split([',', ' ', ';', '\n', '\r', '\t'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn send(State(app): State<Arc<App>>, headers: HeaderMap, mp: Multipart) -> Response {
    // Nobody uploads before logging in: the session is checked before the body is read.
    let h = headers.clone();
    if let Err(r) = with_store(&app, move |app, store| {
        authed(app, store, &h, false).map(|_| ())
    })
    .await
    {
        return r.into_response();
    }
    let posted = match read_send_form(mp).await {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    logged_in(&app, headers, move |app, store, a| {
        check_csrf(a, posted.csrf.as_deref())?;
        if a.user.role < Role::Sender {
            return Err(Refusal::Forbidden("Your role may read, not send"));
        }
        let accounts = send_accounts(app, a);
        let form = posted.form;
        let refuse = |why: String, form: &SendForm| {
            Ok(html(
                StatusCode::BAD_REQUEST,
                pages::send(&a.viewer(), &accounts, form, Some(&why)),
            ))
        };
        let from = crate::address::normalize(&form.from);
        let Some(account) = accounts
            .iter()
            .find(|x| **x == from)
            .and_then(|x| app.config.account_for(x))
        else {
            return refuse(
                format!("{} is not one of your sending accounts", form.from),
                &form,
            );
        };
        let draft = crate::compose::Draft {
            from: form.from.clone(),
            to: addresses(&form.to),
            cc: addresses(&form.cc),
            subject: Some(form.subject.trim().to_owned()).filter(|s| !s.is_empty()),
            body: Some(form.body.clone()).filter(|b| !b.trim().is_empty()),
            ccda: posted.ccda,
            document: None,
            attach: posted.attach.into_iter().collect(),
        };
        let composed = match crate::compose::compose(
            draft,
            ["From", "To", "Cc", "the “Other file” field", "Subject"],
        ) {
            Ok(c) => c,
            Err(why) => return refuse(why, &form),
        };
        store.web_enqueue(
            &a.user.name,
            &NewOutgoing {
                account: Some(account.address.clone()),
                sender: composed.from,
                recipients: composed.recipients,
                subject: Some(form.subject.trim().to_owned()).filter(|s| !s.is_empty()),
                final_delivery: form.final_delivery,
                parts: composed.parts,
            },
        )?;
        Ok(Redirect::to("/sent").into_response())
    })
    .await
}

async fn audit(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    logged_in(&app, headers, move |_, store, a| {
        if a.user.role != Role::Admin {
            return Err(Refusal::NotFound);
        }
        let rows = store.web_audit_recent(500)?;
        page(pages::audit(&a.viewer(), &rows))
    })
    .await
}

async fn users(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    logged_in(&app, headers, move |_, store, a| {
        if a.user.role != Role::Admin {
            return Err(Refusal::NotFound);
        }
        let users = store.web_users()?;
        page(pages::users(&a.viewer(), &users))
    })
    .await
}
