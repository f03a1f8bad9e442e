//! Shell completions and the man page, generated from the CLI definition:
//! every shell's script names the subcommands (bash's parses), and cnm(1)
//! has a section per subcommand. No root.

use std::process::Command;

fn cnm(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cnm"))
        .args(args)
        .output()
        .unwrap()
}

const SUBCOMMANDS: [&str; 8] = [
    "validate", "plan", "apply", "destroy", "show", "graph", "watch", "exec",
];

#[test]
fn completions_for_every_shell_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = cnm(&["completions", shell]);
        assert!(
            o.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let text = String::from_utf8(o.stdout).unwrap();
        for sub in SUBCOMMANDS {
            assert!(text.contains(sub), "{shell} completion lacks {sub}");
        }
        if shell == "bash" {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("cnm.bash");
            std::fs::write(&path, &text).unwrap();
            let check = Command::new("bash").arg("-n").arg(&path).output().unwrap();
            assert!(
                check.status.success(),
                "{}",
                String::from_utf8_lossy(&check.stderr)
            );
        }
    }
    assert_eq!(cnm(&["completions", "nosuchshell"]).status.code(), Some(1));
}

#[test]
fn the_man_page_has_a_section_per_subcommand() {
    let o = cnm(&["man"]);
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains(".TH cnm 1"), "{text}");
    for sub in SUBCOMMANDS {
        let heading = format!(".SH \"CNM {}\"", sub.to_uppercase());
        assert!(text.contains(&heading), "no {heading}");
    }
    assert!(
        text.contains("\\-\\-detailed\\-exitcode"),
        "plan's flags are missing"
    );
    // It names no other page: there is only cnm(1).
    let refs: Vec<&str> = text
        .split(|c: char| c.is_whitespace())
        .filter(|w| w.contains("(1)") && !w.starts_with("cnm(1)"))
        .collect();
    assert!(
        refs.is_empty(),
        "the man page names pages that do not exist: {refs:?}"
    );
}
