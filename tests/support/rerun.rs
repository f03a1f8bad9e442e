//! Privileged integration tests written in Rust run their steps on a
//! private host (tests/support/private-host.sh) by running their own test
//! binary again there, selecting one inner test that does nothing unless
//! the marker variable is set. Threads share a mount namespace, so the
//! namespaces must be a child process's.

use std::path::Path;
use std::process::Command;

/// Run test `inner` of this binary on a private host, with `marker` set.
/// Not root: skipped loudly, or a failure with CNM_REQUIRE_PRIVILEGED=1.
pub fn on_private_host(label: &str, inner: &str, marker: &str) {
    if !nix::unistd::geteuid().is_root() {
        let msg = format!("{label}: SKIPPED: needs root (network and mount namespaces)");
        if std::env::var("CNM_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
            panic!("{msg}, and CNM_REQUIRE_PRIVILEGED=1");
        }
        eprintln!("\n!!!!!!!! {msg} !!!!!!!!\n");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(root.join("tests/support/private-host.sh"))
        .arg(exe)
        .args(["--exact", inner, "--nocapture", "--test-threads=1"])
        .env(marker, "1")
        // The library starts the resolver from the running binary, which
        // here is a test: point it at cnm.
        .env("CNM_RESOLVER_EXE", env!("CARGO_BIN_EXE_cnm"))
        .output()
        .expect("cannot start the private host");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{label}: the run on a private host failed ({})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
}

/// Whether this process is the inner run.
pub fn is_inner(marker: &str) -> bool {
    std::env::var_os(marker).is_some()
}
