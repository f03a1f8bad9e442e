//! Privileged end-to-end tests. Each runs one script of tests/e2e/ on a
//! private host (its own network and mount namespaces, see
//! tests/support/private-host.sh), as a child process, so tests never share
//! or touch the machine's real network.
//!
//! Not root: each test says so loudly and passes as skipped, unless
//! CNM_REQUIRE_PRIVILEGED=1, where it fails.

use std::path::Path;
use std::process::Command;

fn run_script(name: &str) {
    run_script_with(name, &[]);
}

/// The commands the scripts use, with the Debian package of each: all
/// missing ones in one line (what `.ci/run` installs).
fn prerequisites() -> Result<(), String> {
    const NEEDED: [(&str, &str); 13] = [
        ("unshare", "util-linux"),
        ("nsenter", "util-linux"),
        ("ip", "iproute2"),
        ("ss", "iproute2"),
        ("nft", "nftables"),
        ("ping", "iputils-ping"),
        ("socat", "socat"),
        ("dig", "bind9-dnsutils"),
        ("dnsmasq", "dnsmasq-base"),
        ("dockerd", "docker.io"),
        ("busybox", "busybox-static"),
        ("python3", "python3"),
        ("podman", "podman"),
    ];
    let on_path = |cmd: &str| {
        std::env::var_os("PATH").is_some_and(|p| {
            std::env::split_paths(&p).any(|d| d.join(cmd).is_file())
                || ["/usr/sbin", "/sbin"]
                    .iter()
                    .any(|d| Path::new(d).join(cmd).is_file())
        })
    };
    let mut missing: Vec<&str> = NEEDED
        .iter()
        .filter(|(cmd, _)| !on_path(cmd))
        .map(|(_, pkg)| *pkg)
        .collect();
    // The CNI reference plugins are not on PATH.
    if !Path::new("/usr/lib/cni/bridge").is_file() {
        missing.push("containernetworking-plugins");
    }
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "missing packages: {m} (Debian: apt-get install -y {m}; .ci/run installs them)",
        m = missing.join(" ")
    ))
}

/// [`run_script`] with more environment for the script.
fn run_script_with(name: &str, env: &[(&str, std::ffi::OsString)]) {
    if !nix::unistd::geteuid().is_root() {
        let msg = format!("e2e {name}: SKIPPED: needs root (network and mount namespaces)");
        if std::env::var("CNM_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
            panic!("{msg}, and CNM_REQUIRE_PRIVILEGED=1");
        }
        eprintln!("\n!!!!!!!! {msg} !!!!!!!!\n");
        return;
    }
    if let Err(missing) = prerequisites() {
        panic!("e2e {name}: {missing}");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("tests/support/private-host.sh"))
        .arg("bash")
        .arg(root.join("tests/e2e").join(format!("{name}.sh")))
        .env("CNM", env!("CARGO_BIN_EXE_cnm"))
        .env("NO_COLOR", "1")
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .output()
        .expect("cannot start the private host");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A part a script could not run here (a kernel feature no privilege
    // brings) is said loudly, as a skip for want of root is.
    for line in stdout.lines().filter(|l| l.starts_with("SKIPPED")) {
        eprintln!("\n!!!!!!!! e2e {name}: {line} !!!!!!!!\n");
    }
    assert!(
        out.status.success() && stdout.contains("PASS"),
        "e2e {name} failed ({})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
}

#[test]
fn apply_traffic() {
    run_script("apply_traffic");
}

/// 1,000 sandboxes (about a minute in a debug build).
#[test]
fn scale() {
    run_script("scale");
}

#[test]
fn idempotent() {
    run_script("idempotent");
}

#[test]
fn drift() {
    run_script("drift");
}

/// `cnm docker-plugin` under a real dockerd.
#[test]
fn docker_plugin() {
    run_script("docker_plugin");
}

/// driver: cni, with Debian's reference plugins.
#[test]
fn cni_delegation() {
    run_script("cni_delegation");
}

/// cnm as a CNI plugin, driven by a runtime written from the spec.
#[test]
fn cni_plugin() {
    run_script("cni_plugin");
}

/// cnm as a CNI plugin under podman (CNI backend, runc).
#[test]
fn cni_podman() {
    run_script("cni_podman");
}

#[test]
fn edits() {
    run_script("edits");
}

#[test]
fn destroy() {
    run_script("destroy");
}

#[test]
fn foreign() {
    run_script("foreign");
}

#[test]
fn bad_input() {
    run_script("bad_input");
}

#[test]
fn crash() {
    run_script("crash");
}

#[test]
fn watch() {
    run_script("watch");
}

#[test]
fn firewall() {
    run_script("firewall");
}

#[test]
fn existing_netns() {
    run_script("existing_netns");
}

#[test]
fn sandbox_sysctls() {
    run_script("sandbox_sysctls");
}

#[test]
fn ipv6_only() {
    run_script("ipv6_only");
}

#[test]
fn ephemeral_ports() {
    run_script("ephemeral_ports");
}

#[test]
fn embed() {
    let env = if nix::unistd::geteuid().is_root() {
        vec![("EMBED", example_binary("embed").into_os_string())]
    } else {
        Vec::new()
    };
    run_script_with("embed", &env);
}

#[test]
fn docker_options() {
    run_script("docker_options");
}

#[test]
fn reliability() {
    run_script("reliability");
}

#[test]
fn overlay() {
    run_script("overlay");
}

#[test]
fn security() {
    run_script("security");
}

#[test]
fn correctness() {
    run_script("correctness");
}

#[test]
fn ifname() {
    run_script("ifname");
}

#[test]
fn ipvlan() {
    run_script("ipvlan");
}

#[test]
fn macvlan() {
    run_script("macvlan");
}

#[test]
fn reboot() {
    run_script("reboot");
}

/// An example's binary. `cargo test` compiles examples but leaves them
/// under hashed names: build it by name (a no-op when it is current).
fn example_binary(name: &str) -> std::path::PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cannot run cargo to build an example");
    assert!(status.success(), "cargo build --example {name} failed");
    Path::new(env!("CARGO_BIN_EXE_cnm"))
        .with_file_name("examples")
        .join(name)
}

#[test]
fn remote() {
    let env = if nix::unistd::geteuid().is_root() {
        vec![("CNM_PLUGIN", example_binary("cnm-plugin").into_os_string())]
    } else {
        Vec::new()
    };
    run_script_with("remote", &env);
}

#[test]
fn host_resolver() {
    run_script("host_resolver");
}

#[test]
fn dns() {
    run_script("dns");
}

#[test]
fn read_only() {
    run_script("read_only");
}

#[test]
fn records_lost() {
    run_script("records_lost");
}

#[test]
fn errors() {
    run_script("errors");
}

#[test]
fn saved_plan() {
    run_script("saved_plan");
}

#[test]
fn record_topology() {
    run_script("record_topology");
}

#[test]
fn resolver_hostile() {
    run_script("resolver_hostile");
}

#[test]
fn plugin_restart() {
    let env = if nix::unistd::geteuid().is_root() {
        vec![("CNM_PLUGIN", example_binary("cnm-plugin").into_os_string())]
    } else {
        Vec::new()
    };
    run_script_with("plugin_restart", &env);
}

#[test]
fn docker_parity() {
    run_script("docker_parity");
}
