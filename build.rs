//! Records build information for `directd --version`, and which test servers are installed.
use std::path::Path;
use std::process::Command;

/// Where Debian (or a local build) puts the servers some integration tests start.
const SBIN: [&str; 2] = ["/usr/sbin", "/usr/local/sbin"];

fn installed(name: &str) -> bool {
    SBIN.iter().any(|d| Path::new(d).join(name).exists())
}

/// Tests that need a server the machine lacks are compiled `#[ignore]`d with the reason, so the
/// test runner reports them as ignored instead of passing them untested. Under CI=true nothing
/// is ignored: a missing server there must fail the run.
fn test_servers() {
    println!("cargo:rerun-if-env-changed=CI");
    for dir in SBIN {
        // Installing a server adds a file here; cargo then reruns this script.
        if Path::new(dir).exists() {
            println!("cargo:rerun-if-changed={dir}");
        }
    }
    // The browser tests drive Debian's chromium through its chromedriver.
    println!("cargo:rerun-if-changed=/usr/bin");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        return;
    }
    if !Path::new("/usr/bin/chromedriver").exists() {
        println!("cargo:rustc-cfg=missing_chromium");
    }
    if !installed("dnsmasq") {
        println!("cargo:rustc-cfg=missing_dnsmasq");
    }
    if !installed("slapd") {
        println!("cargo:rustc-cfg=missing_slapd");
    }
    let mailservers = installed("postfix") && installed("dovecot");
    if !mailservers {
        println!("cargo:rustc-cfg=missing_mailservers");
    }
}

fn main() {
    let git = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    test_servers();
    let profile = std::env::var("PROFILE").unwrap_or_default();
    println!("cargo:rustc-env=DIRECTD_BUILD_INFO=git {git}, {profile} build, {rustc_version}");
    // A rerun-if-changed path that does not exist makes cargo rebuild every time (a source
    // tarball has no .git), so name only what is there.
    println!("cargo:rerun-if-changed=build.rs");
    for path in [".git/HEAD", ".git/refs"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
