use super::*;
use rustix::fs::Mode;
use std::os::unix::fs::PermissionsExt;

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn tmp() -> std::io::Result<tempfile::TempDir> {
    tempfile::tempdir()
}

#[test]
fn write_sets_mode_whatever_the_umask_and_replaces_atomically() -> TestResult {
    let t = tmp()?;
    let old = rustix::process::umask(Mode::empty());
    let d = Dir::create_all(&t.path().join("a/b"), 0o700)?;
    rustix::process::umask(old);
    let m = std::fs::metadata(t.path().join("a"))?;
    assert_eq!(m.permissions().mode() & 0o7777, 0o700);
    let id1 = d.write("f", b"one", 0o644, None, true)?;
    let id2 = d.write("f", b"two", 0o644, None, true)?;
    assert_ne!(id1, id2);
    let m = std::fs::metadata(t.path().join("a/b/f"))?;
    assert_eq!(m.permissions().mode() & 0o7777, 0o644);
    assert_eq!(d.read_string("f", 10)?.ok_or("f was not found")?.0, "two");
    assert_eq!(d.list()?, vec!["f".to_string()]);
    Ok(())
}

#[test]
fn links_are_never_followed() -> TestResult {
    let t = tmp()?;
    let victim = t.path().join("victim");
    std::fs::write(&victim, "keep")?;
    let d = Dir::create_all(&t.path().join("d"), 0o755)?;
    std::os::unix::fs::symlink(&victim, t.path().join("d/f"))?;
    assert!(matches!(d.read("f", 100), Err(SafeError::Symlink(_))));
    assert!(matches!(
        d.write("f", b"x", 0o644, None, false),
        Err(SafeError::Symlink(_))
    ));
    assert!(!d.remove_file("f", None)?);
    assert_eq!(std::fs::read_to_string(&victim)?, "keep");
    // A link in the middle of a path.
    std::os::unix::fs::symlink(t.path().join("d"), t.path().join("l"))?;
    assert!(matches!(
        Dir::open(&t.path().join("l")),
        Err(SafeError::Symlink(p)) if p.ends_with("/l")
    ));
    assert!(Dir::create_all(&t.path().join("l/x"), 0o700).is_err());
    Ok(())
}

#[test]
fn remove_checks_identity() -> TestResult {
    let t = tmp()?;
    let d = Dir::create_all(t.path(), 0o700)?;
    let id = d.write("f", b"x", 0o600, None, false)?;
    let other = d.write("g", b"y", 0o600, None, false)?;
    assert!(!d.remove_file("f", Some(other))?);
    assert!(d.remove_file("f", Some(id))?);
    assert!(d.stat("f")?.is_none());
    let (_sub, created) = d.create_subdir("s", 0o755)?;
    assert!(created);
    let sid = d.stat("s")?.ok_or("s was not found")?.id;
    std::fs::write(t.path().join("s/foreign"), "x")?;
    assert!(!d.remove_dir("s", sid)?);
    assert!(t.path().join("s/foreign").exists());
    Ok(())
}

#[test]
fn leftover_temporary_files_of_cnm_are_swept_and_nothing_else() -> TestResult {
    let t = tmp()?;
    let d = Dir::create_all(t.path(), 0o755)?;
    d.write("hosts", b"x", 0o644, None, false)?;
    // A temporary file of a killed write: empty, cnm's name shape.
    std::fs::write(t.path().join(".hosts.0123456789abcdef.cnm-tmp"), "")?;
    // Not cnm's: wrong shape, or with content and no mark.
    std::fs::write(t.path().join(".hosts.0123.cnm-tmp"), "")?;
    std::fs::write(t.path().join(".hosts.fedcba9876543210.cnm-tmp"), "data")?;
    std::fs::write(t.path().join("notes"), "")?;
    assert_eq!(d.remove_own_temps("cnm:x")?, 1);
    assert_eq!(
        d.list()?,
        vec![
            ".hosts.0123.cnm-tmp".to_string(),
            ".hosts.fedcba9876543210.cnm-tmp".to_string(),
            "hosts".to_string(),
            "notes".to_string(),
        ]
    );
    Ok(())
}

#[test]
fn temporary_names_have_one_shape() {
    assert!(write::is_temp_name(".resolv.conf.5e46579244f52122.cnm-tmp"));
    assert!(!write::is_temp_name("resolv.conf.5e46579244f52122.cnm-tmp"));
    assert!(!write::is_temp_name("..5e46579244f52122.cnm-tmp"));
    assert!(!write::is_temp_name(".hosts.5e46579244f5212.cnm-tmp"));
    assert!(!write::is_temp_name(".hosts.5e46579244f52122"));
}
