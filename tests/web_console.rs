//! The web console end to end: `directd web` and `directd run` (the built binary) beside a real
//! sandbox HISP, driven over HTTP (security checks) and through a real headless Chromium
//! (Debian's chromium + chromedriver, WebDriver).
//!
//! The WebDriver client is a few JSON calls over the reqwest already in the tree rather than
//! fantoccini, which would bring hyper-rustls, cookie and webdriver crates for the eight
//! commands these tests use.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::process::Cli;
use support::sandbox::{sandbox_config, TestEnv, A, B, C, CCDA};

const PASSWORD: &str = "correct horse battery staple";

fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `directd web` on a free loopback port; stopped (SIGTERM) when dropped.
struct Web {
    child: Child,
    base: String,
}

impl Web {
    fn start(cli: &Cli, idle_secs: u32) -> Web {
        Self::start_with(cli, idle_secs, None)
    }

    /// With `tls` (certificate, key), over HTTPS.
    fn start_with(cli: &Cli, idle_secs: u32, tls: Option<(&Path, &Path)>) -> Web {
        let mut command = cli.command(&["web"]);
        if let Some((cert, key)) = tls {
            command
                .env("DIRECTD_WEB__CERT_FILE", cert)
                .env("DIRECTD_WEB__KEY_FILE", key);
        }
        let mut child = command
            .env("DIRECTD_WEB__LISTEN", "127.0.0.1:0")
            .env("DIRECTD_WEB__IDLE_TIMEOUT_SECS", idle_secs.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        // Plain HTTP is allowed on loopback, and the console says so.
        let scheme = if tls.is_some() {
            "https://"
        } else {
            assert!(line.contains("plain HTTP: loopback only"), "{line:?}");
            "http://"
        };
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with(scheme))
            .unwrap()
            .trim_end_matches('/')
            .to_owned();
        // Keep reading stdout so the console never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Web { child, base }
    }

    fn stderr(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let mut s = String::new();
        std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut s).unwrap();
        s
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn add_user(cli: &Cli, name: &str, role: &str, account: &str) {
    let mut c = cli.command(&[
        "users",
        "add",
        name,
        "--role",
        role,
        "--account",
        account,
        "--password-stdin",
    ]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        format!("{PASSWORD}\n").as_bytes(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", support::process::text(&out));
}

fn base32_decode(s: &str) -> Vec<u8> {
    let (mut buf, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in s.trim().bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => continue,
        } as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    out
}

/// A code for the current step that the console has not seen yet: waits for the next step
/// when `used` is this one (a code is accepted once).
fn fresh_code(secret: &[u8], used: &mut u64) -> String {
    loop {
        let step = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 30;
        if step > *used {
            *used = step;
            return format!("{:06}", directd::web::auth::totp_code(secret, step));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn field(html: &str, id_or_name: &str) -> String {
    // The value of <input ... name="csrf" value="..."> or the text of <code id="totp-secret">.
    let marker = format!("name=\"{id_or_name}\" value=\"");
    if let Some(i) = html.find(&marker) {
        let rest = &html[i + marker.len()..];
        return rest[..rest.find('"').unwrap()].to_owned();
    }
    let marker = format!("id=\"{id_or_name}\">");
    let i = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {id_or_name} in {html}"));
    let rest = &html[i + marker.len()..];
    rest[..rest.find('<').unwrap()].to_owned()
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let enc: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={enc}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A plain HTTP client that keeps the console's cookies itself (to look at their flags).
struct Browserless {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Browserless {
    fn new(base: &str) -> Browserless {
        init_tls();
        Browserless {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookies: Vec::new(),
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Answer {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let res = req.header("cookie", cookie).send().await.unwrap();
        for c in res.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (kv, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            if !v.is_empty() {
                self.cookies.push((k.to_owned(), v.to_owned()));
            }
        }
        Answer {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Answer {
        let r = self.http.get(format!("{}{path}", self.base));
        self.send(r).await
    }

    async fn post(&mut self, path: &str, body: String) -> Answer {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(r).await
    }

    /// Password then code; returns the TOTP secret (enrolled at this first login).
    async fn log_in(&mut self, name: &str, used: &mut u64) -> (Vec<u8>, Answer) {
        let page = self.get("/login").await;
        let csrf = field(&page.body, "csrf");
        let r = self
            .post(
                "/login",
                form(&[("name", name), ("password", PASSWORD), ("csrf", &csrf)]),
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let mfa = self.get("/mfa").await;
        assert_eq!(
            mfa.status,
            200,
            "the second-factor page after a login: {:?} {}",
            mfa.headers.get("location"),
            mfa.body
        );
        let secret = base32_decode(&field(&mfa.body, "totp-secret"));
        let csrf = field(&mfa.body, "csrf");
        let code = fresh_code(&secret, used);
        let done = self
            .post("/mfa", form(&[("code", &code), ("csrf", &csrf)]))
            .await;
        (secret, done)
    }

    fn session(&self) -> Option<String> {
        self.cookies
            .iter()
            .find(|(k, _)| k == "directd_session")
            .map(|(_, v)| v.clone())
    }
}

/// A received message whose every field is hostile markup, stored as the daemon would.
fn store_hostile_message(env: &TestEnv) -> i64 {
    let mut store = env.store();
    let mail = directd::message::ReceivedMail {
        recipient: B.into(),
        sender: "\"<img src=x onerror=alert(1)>\" <evil@x.org>".into(),
        hisp_id: "hostile-1".into(),
        headers: vec![("Subject".into(), "<script>alert('subject')</script>".into())],
        body_type: "text/plain".into(),
        body: b"</pre><script>alert('body')</script>".to_vec(),
        attachments: vec![directd::message::ReceivedAttachment {
            filename: "\"><script>alert('file')</script>.txt".into(),
            mime_type: "text/html".into(),
            description: String::new(),
            data: b"<script>alert('download')</script>".to_vec(),
        }],
        raw: None,
        verdict: None,
        mdn: None,
    };
    store.store_incoming(B, &mail).unwrap().id()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_checks_over_http() {
    let env = TestEnv::start(sandbox_config(&[A, B, C])).await;
    let cli = Cli::new(&env, &[A, B, C]);
    add_user(&cli, "bea", "sender", B);
    add_user(&cli, "cal", "viewer", C);
    let hostile = store_hostile_message(&env);
    // Each user's codes are their own: a first login never waits for a fresh step.
    // Every step runs on a console with a long idle timeout, so no stall of a loaded machine
    // between two requests can log a user off mid-test (a 3 s and a 10 s timeout both were
    // outlasted once in CI, between a login and the page after it). Idle logoff is checked
    // below on a second console over the same store with a 2 s timeout, by the clock.
    let web = Web::start(&cli, 600);

    // Headers on every answer, the login page included.
    let mut anon = Browserless::new(&web.base);
    let login = anon.get("/login").await;
    assert_eq!(login.status, 200);
    let csp = login.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(login.headers["x-content-type-options"], "nosniff");
    assert!(
        !login.body.contains("<script>") && !login.body.contains(" style="),
        "inline script or style"
    );
    // Pages need a session.
    assert_eq!(anon.get("/inbox").await.headers["location"], "/login");

    // A login form post without its token is refused.
    let r = anon
        .post("/login", form(&[("name", "bea"), ("password", PASSWORD)]))
        .await;
    assert_eq!(r.status, 403);

    let mut bea = Browserless::new(&web.base);
    let (_, done) = bea.log_in("bea", &mut 0).await;
    assert_eq!(done.status, 303, "{}", done.body);
    // The session cookie's flags (no Secure: this console is plain HTTP on loopback).
    let set = done.headers["set-cookie"].to_str().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );

    // Hostile content is shown as text, never as markup.
    let page = bea.get(&format!("/message/{hostile}")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("&lt;script&gt;alert('subject')&lt;/script&gt;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    assert!(!page.body.contains("<img src=x"), "{}", page.body);
    let inbox = bea.get("/inbox").await;
    assert!(!inbox.body.contains("<script>alert") && inbox.body.contains("&lt;img src=x"));
    // A download is an attachment of opaque bytes, whatever the sender declared.
    let att = field(
        &page
            .body
            .replace("href=\"/attachment/", "name=\"att\" value=\""),
        "att",
    );
    let dl = bea.get(&format!("/attachment/{att}")).await;
    assert_eq!(dl.status, 200);
    assert_eq!(dl.headers["content-type"], "application/octet-stream");
    assert!(dl.headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
    assert_eq!(dl.headers["x-content-type-options"], "nosniff");
    assert_eq!(dl.body, "<script>alert('download')</script>");

    // A state-changing post without the session's CSRF token is refused and changes nothing.
    let r = bea
        .post(&format!("/message/{hostile}/read"), String::new())
        .await;
    assert_eq!(r.status, 403);
    let r = bea
        .post(
            &format!("/message/{hostile}/read"),
            form(&[("csrf", "0".repeat(64).as_str())]),
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(!env
        .store()
        .audit_rows(None)
        .unwrap()
        .iter()
        .any(|r| r.action == "mark-read"));

    // Logoff ends the session: the old cookie is refused afterwards.
    let old = bea.session().unwrap();
    let page = bea.get("/inbox").await;
    let csrf = field(&page.body, "csrf");
    assert_eq!(
        bea.post("/logout", form(&[("csrf", &csrf)])).await.status,
        303
    );
    let mut replay = Browserless::new(&web.base);
    replay.cookies.push(("directd_session".into(), old));
    assert_eq!(replay.get("/inbox").await.headers["location"], "/login");

    // Another account's user: the same URL does not exist for them.
    let mut cal = Browserless::new(&web.base);
    let (_, done) = cal.log_in("cal", &mut 0).await;
    assert_eq!(done.status, 303);
    assert_eq!(cal.get(&format!("/message/{hostile}")).await.status, 404);
    assert_eq!(cal.get(&format!("/attachment/{att}")).await.status, 404);
    assert_eq!(cal.get("/audit").await.status, 404, "a viewer is no admin");
    assert!(!cal.get("/inbox").await.body.contains("evil@x.org"));

    // Idle timeout: a session left alone for longer than it is refused. The same session,
    // presented to a console over the same store whose timeout is 2 s.
    let short = Web::start(&cli, 2);
    assert_eq!(cal.get("/inbox").await.status, 200);
    let store = env.store_path.clone();
    let idle_for = move || -> i64 {
        let db = rusqlite::Connection::open(&store).unwrap();
        let last: i64 = db
            .query_row("SELECT max(last_seen_ms) FROM web_sessions", [], |r| {
                r.get(0)
            })
            .unwrap();
        directd::store::now_ms() - last
    };
    // Until the newest session has been left alone for longer than the timeout (by the clock,
    // not by a fixed sleep; asking the console would refresh it).
    assert!(support::sandbox::wait_until(30, || idle_for() > 2_500).await);
    let mut idle = Browserless::new(&short.base);
    idle.cookies = cal.cookies.clone();
    assert_eq!(idle.get("/inbox").await.headers["location"], "/login");
    // The long console still knows the session: what logged it off was the timeout alone.
    assert_eq!(cal.get("/inbox").await.status, 200);
    drop(short);

    // Login rate limiting: after five wrong passwords even the right one waits.
    let mut guess = Browserless::new(&web.base);
    for _ in 0..5 {
        let csrf = field(&guess.get("/login").await.body, "csrf");
        let r = guess
            .post(
                "/login",
                form(&[
                    ("name", "cal"),
                    ("password", "wrong password!"),
                    ("csrf", &csrf),
                ]),
            )
            .await;
        assert_eq!(r.status, 401);
    }
    let csrf = field(&guess.get("/login").await.body, "csrf");
    let r = guess
        .post(
            "/login",
            form(&[("name", "cal"), ("password", PASSWORD), ("csrf", &csrf)]),
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.body);

    // Every view and download is in the audit trail under the web user's name, and the web
    // server's log names routes, never message content.
    let audit = env.store().audit_rows(None).unwrap();
    for action in ["web view", "web download", "web enrol", "web logoff"] {
        assert!(
            audit
                .iter()
                .any(|r| r.action == action && (r.actor == "bea" || r.actor == "cal")),
            "{action}: {audit:?}"
        );
    }
    let log = web.stderr();
    assert!(log.contains("/message/{id}"), "{log}");
    for phi in ["alert", "evil@x.org", "script", PASSWORD] {
        assert!(!log.contains(phi), "{phi} in the web log: {log}");
    }
}

// ---- the browser ----

struct Driver {
    http: reqwest::Client,
    base: String,
    session: String,
    process: Child,
    _profile: tempfile::TempDir,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Driver {
    async fn start(downloads: &Path) -> Driver {
        init_tls();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        assert!(
            support::sandbox::wait_until(20, || std::net::TcpStream::connect(("127.0.0.1", port))
                .is_ok())
            .await,
            "chromedriver did not start"
        );
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--window-size=1280,1000",
                         format!("--user-data-dir={}", profile.path().display())],
                "prefs": {"download.default_directory": downloads.display().to_string(),
                          "download.prompt_for_download": false}
            }
        }}});
        let mut d = Driver {
            http,
            base,
            session: String::new(),
            process,
            _profile: profile,
        };
        let v = d.call("POST", "/session", caps).await;
        d.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("{v}"))
            .to_owned();
        d
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = if path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_string()),
        };
        let text = req.send().await.unwrap().text().await.unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        v["value"].clone()
    }

    /// Ends the WebDriver session, which makes chromedriver close the browser it started (killing
    /// chromedriver alone, as `Drop` must, leaves that browser running).
    async fn quit(self) {
        self.call("DELETE", "", json!({})).await;
    }

    async fn go(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url })).await;
    }

    async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .call(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v[ELEMENT].as_str().map(str::to_owned)
    }

    async fn el(&self, css: &str) -> String {
        self.find(css).await.unwrap_or_else(|| panic!("no {css}"))
    }

    async fn wait_for(&self, css: &str, secs: u64) -> String {
        for _ in 0..secs * 4 {
            if let Some(e) = self.find(css).await {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("{css} never appeared; page: {}", self.source().await)
    }

    async fn type_in(&self, css: &str, text: &str) {
        let e = self.el(css).await;
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let e = self.el(css).await;
        self.call("POST", &format!("/element/{e}/click"), json!({}))
            .await;
    }

    async fn text(&self, css: &str) -> String {
        let e = self.el(css).await;
        self.call("GET", &format!("/element/{e}/text"), json!({}))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn attr(&self, css: &str, name: &str) -> String {
        let e = self.el(css).await;
        self.call("GET", &format!("/element/{e}/attribute/{name}"), json!({}))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn source(&self) -> String {
        self.call("GET", "/source", json!({}))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn url(&self) -> String {
        self.call("GET", "/url", json!({}))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn screenshot(&self, name: &str) {
        let b64 = self.call("GET", "/screenshot", json!({})).await;
        let png = openssl::base64::decode_block(b64.as_str().unwrap()).unwrap();
        let dir = screenshots();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    async fn cookie(&self, name: &str) -> Option<String> {
        let v = self
            .call("GET", &format!("/cookie/{name}"), json!({}))
            .await;
        v["value"].as_str().map(str::to_owned)
    }

    async fn delete_cookies(&self) {
        self.call("DELETE", "/cookie", json!({})).await;
    }

    /// Password, then (enrolling at the first login) the TOTP code computed here.
    async fn log_in(
        &self,
        web: &str,
        name: &str,
        secret: Option<&[u8]>,
        used: &mut u64,
        shot: Option<&str>,
    ) -> Vec<u8> {
        self.go(&format!("{web}/login")).await;
        if let Some(s) = shot {
            self.screenshot(&format!("{s}-login")).await;
        }
        self.type_in("#name", name).await;
        self.type_in("#password", PASSWORD).await;
        self.click("#login").await;
        self.wait_for("#code", 10).await;
        let secret = match secret {
            Some(s) => s.to_vec(),
            None => {
                if let Some(s) = shot {
                    self.screenshot(&format!("{s}-enrol")).await;
                }
                base32_decode(&self.text("#totp-secret").await)
            }
        };
        let code = fresh_code(&secret, used);
        self.type_in("#code", &code).await;
        self.click("#verify").await;
        self.wait_for("#logoff", 10).await;
        secret
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/web-screenshots")
}

#[cfg_attr(
    missing_chromium,
    ignore = "needs chromium and chromium-driver (apt-get install chromium chromium-driver)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_send_receive_read() {
    // One recipient on a remote HISP that refuses, to see a failure highlighted.
    let mut sandbox = sandbox_config(&[A, B, C]);
    sandbox.remote.insert(
        "failing.example".into(),
        directd::sandbox::RemoteBehaviour::Fail,
    );
    let env = TestEnv::start(sandbox).await;
    let cli = Cli::new(&env, &[A, B, C]);
    add_user(&cli, "ann", "admin", A);
    add_user(&cli, "bob", "sender", B);
    add_user(&cli, "cyd", "viewer", C);
    // The daemon as configured by the lab: it polls every 0.2 s.
    let mut daemon = cli
        .command(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let web = Web::start(&cli, 600);
    let downloads = tempfile::tempdir().unwrap();
    let browser = Driver::start(downloads.path()).await;

    // Ann (account A) enrols and sends the C-CDA from the Send page.
    browser
        .log_in(&web.base, "ann", None, &mut 0, Some("01"))
        .await;
    browser.screenshot("02-inbox-empty").await;
    browser.go(&format!("{}/send", web.base)).await;
    let ccda = env.dir.path().join("referral-summary.xml");
    std::fs::write(&ccda, CCDA).unwrap();
    browser
        .type_in("#to", &format!("{B}, dr.lee@failing.example"))
        .await;
    browser.type_in("#subject", "Referral for Quux").await;
    browser
        .type_in("#body", "Please see the attached summary.")
        .await;
    browser.type_in("#ccda", &ccda.display().to_string()).await;
    browser.click("#final").await;
    browser.screenshot("03-send").await;
    browser.click("#send").await;
    // On the Sent page, live (no reload): the recipient reaches dispatched.
    browser.wait_for("#sent-live", 10).await;
    assert!(browser.url().await.ends_with("/sent"));
    browser
        .wait_for(".recipient[data-state=dispatched]", 60)
        .await;
    assert!(browser.text("#live-mark").await.contains("live"));
    browser.screenshot("04-sent-dispatched").await;
    let timeline = browser.text("#sent-live").await;
    for state in ["queued", "submitted", "dispatched"] {
        assert!(timeline.contains(state), "{state} missing in {timeline}");
    }
    browser.go(&format!("{}/audit", web.base)).await;
    assert!(browser.text("#audit").await.contains("send"));
    browser.screenshot("05-audit").await;
    browser.go(&format!("{}/users", web.base)).await;
    browser.screenshot("06-users").await;
    browser.click("#logoff").await;
    browser.wait_for("#login", 10).await;

    // Bob (account B) finds it, unread, in his inbox.
    browser.log_in(&web.base, "bob", None, &mut 0, None).await;
    let link = browser.wait_for("#inbox tr.unread a", 30).await;
    browser.screenshot("07-inbox").await;
    let href = browser.attr("#inbox tr.unread a", "href").await;
    let message_url = if href.starts_with("http") {
        href.clone()
    } else {
        format!("{}{href}", web.base)
    };
    browser
        .call("POST", &format!("/element/{link}/click"), json!({}))
        .await;
    browser.wait_for("#body", 10).await;
    assert!(browser
        .text("#body")
        .await
        .contains("Please see the attached summary."));
    // The document it became (ingested by the daemon).
    let mut doc = None;
    for _ in 0..60 {
        if let Some(d) = browser.find("a[href^='/document/']").await {
            doc = Some(d);
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        browser.go(&message_url).await;
    }
    assert!(doc.is_some(), "the message never showed its document");
    browser.screenshot("08-message").await;

    // Download: byte-identical to what was sent.
    browser.click("a[href^='/attachment/']").await;
    let mut saved = None;
    for _ in 0..40 {
        saved = std::fs::read_dir(downloads.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "xml"));
        if saved.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let saved = saved.expect("the browser saved no download");
    assert_eq!(
        std::fs::read(&saved).unwrap(),
        CCDA,
        "downloaded bytes differ"
    );

    // Mark as read.
    browser.click("#mark-read").await;
    browser.wait_for("#notice", 10).await;
    assert!(browser.text("#notice").await.contains("Marked as read"));
    browser.screenshot("09-marked-read").await;

    // The document page: the patient and sections in words, not the document's own HTML.
    browser.click("a[href^='/document/']").await;
    browser.wait_for("#patient-link", 10).await;
    let page = browser.source().await;
    assert!(page.contains("Patient:"), "{page}");
    assert!(
        page.contains("class=\"card section\""),
        "no sections: {page}"
    );
    browser.screenshot("10-document").await;
    let doc_url = browser.url().await;
    browser.click("#patient-link").await;
    browser.wait_for("a[href^='/document/']", 10).await;
    browser.screenshot("11-patient").await;

    // Bob's session cookie is refused after logoff.
    let cookie = browser.cookie("directd_session").await.unwrap();
    browser.click("#logoff").await;
    browser.wait_for("#login", 10).await;
    let mut replay = Browserless::new(&web.base);
    replay.cookies.push(("directd_session".into(), cookie));
    assert_eq!(replay.get("/inbox").await.headers["location"], "/login");

    // Cyd (account C) gets 404 for the same message and document.
    browser.delete_cookies().await;
    browser.log_in(&web.base, "cyd", None, &mut 0, None).await;
    browser.go(&message_url).await;
    assert!(browser.source().await.contains("404"));
    browser.screenshot("12-other-account-404").await;
    browser.go(&doc_url).await;
    assert!(browser.source().await.contains("404"));
    let mut cyd = Browserless::new(&web.base);
    cyd.cookies.push((
        "directd_session".into(),
        browser.cookie("directd_session").await.unwrap(),
    ));
    assert_eq!(cyd.get(&href.replace(&web.base, "")).await.status, 404);

    // What the web users did is in the audit trail under their names.
    let audit = env.store().audit_rows(None).unwrap();
    for (actor, action) in [
        ("ann", "send"),
        ("bob", "web view"),
        ("bob", "web download"),
        ("bob", "mark-read"),
        ("bob", "web document"),
    ] {
        assert!(
            audit.iter().any(|r| r.actor == actor && r.action == action),
            "{actor} {action}"
        );
    }
    browser.quit().await;
    let _ = daemon.kill();
    let _ = daemon.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_command_checks_its_input() {
    let env = TestEnv::start(sandbox_config(&[A])).await;
    let cli = Cli::new(&env, &[A]);
    let run = |args: &[&str], stdin: &str| {
        let mut c = cli.command(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let add = [
        "users",
        "add",
        "dee",
        "--role",
        "viewer",
        "--account",
        A,
        "--password-stdin",
    ];
    let short = run(&add, "short\n");
    assert_eq!(short.status.code(), Some(2));
    assert!(support::process::text(&short).contains("at least 12 characters"));
    let none = run(
        &["users", "add", "dee", "--role", "viewer", "--account", A],
        "",
    );
    assert!(support::process::text(&none).contains("--password-file FILE or --password-stdin"));
    let bad = run(
        &[
            "users",
            "add",
            "dee",
            "--role",
            "viewer",
            "--account",
            "not an address",
            "--password-stdin",
        ],
        PASSWORD,
    );
    assert!(support::process::text(&bad).contains("not a valid Direct address"));
    assert!(run(&add, PASSWORD).status.success());
    let again = run(&add, PASSWORD);
    assert!(support::process::text(&again).contains("exists already"));
    // The hash is argon2id; the password itself is nowhere in the store.
    let user = env.store().web_user("dee").unwrap().unwrap();
    assert!(user.password_hash.starts_with("$argon2id$"));
    assert!(!std::fs::read(&env.store_path)
        .unwrap()
        .windows(PASSWORD.len())
        .any(|w| w == PASSWORD.as_bytes()));
    assert!(run(&["users", "disable", "dee"], "").status.success());
    assert!(env.store().web_user("dee").unwrap().unwrap().disabled);
    let list = run(&["users", "list"], "");
    let text = support::process::text(&list);
    assert!(
        text.contains("dee") && text.contains("disabled") && text.contains("at next login"),
        "{text}"
    );
    assert_eq!(
        run(&["users", "reset-mfa", "nobody"], "").status.code(),
        Some(2)
    );
    let audit = env.store().audit_rows(None).unwrap();
    assert!(audit
        .iter()
        .any(|r| r.action == "web user disable" && r.detail.as_deref() == Some("dee")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_rustls() {
    let env = TestEnv::start(sandbox_config(&[A])).await;
    let cli = Cli::new(&env, &[A]);
    // The lab's server certificate is for 127.0.0.1, from the lab's CA.
    let (cert, key) = (
        env.dir.path().join("sandbox-server.pem"),
        env.dir.path().join("sandbox-server.key"),
    );
    let web = Web::start_with(&cli, 60, Some((&cert, &key)));
    init_tls();
    let tls = directd::tls::client_config(&env.lab.ca_file, None).unwrap();
    let https = reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = https
        .get(format!("{}/login", web.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .contains("max-age="));
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    // Plain HTTP to the HTTPS port gets no page.
    let plain = reqwest::Client::new()
        .get(web.base.replace("https://", "http://") + "/login")
        .send()
        .await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));
}
