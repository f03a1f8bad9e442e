use super::*;
use rustix::fs::Mode;
use std::os::unix::fs::PermissionsExt;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn write_sets_mode_whatever_the_umask_and_replaces_atomically() {
    let t = tmp();
    let old = rustix::process::umask(Mode::empty());
    let d = Dir::create_all(&t.path().join("a/b"), 0o700).unwrap();
    rustix::process::umask(old);
    let m = std::fs::metadata(t.path().join("a")).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o700);
    let id1 = d.write("f", b"one", 0o644, None, true).unwrap();
    let id2 = d.write("f", b"two", 0o644, None, true).unwrap();
    assert_ne!(id1, id2);
    let m = std::fs::metadata(t.path().join("a/b/f")).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o644);
    assert_eq!(d.read_string("f", 10).unwrap().unwrap().0, "two");
    assert_eq!(d.list().unwrap(), vec!["f".to_string()]);
}

#[test]
fn links_are_never_followed() {
    let t = tmp();
    let victim = t.path().join("victim");
    std::fs::write(&victim, "keep").unwrap();
    let d = Dir::create_all(&t.path().join("d"), 0o755).unwrap();
    std::os::unix::fs::symlink(&victim, t.path().join("d/f")).unwrap();
    assert!(matches!(d.read("f", 100), Err(SafeError::Symlink(_))));
    assert!(matches!(
        d.write("f", b"x", 0o644, None, false),
        Err(SafeError::Symlink(_))
    ));
    assert!(!d.remove_file("f", None).unwrap());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    // A link in the middle of a path.
    std::os::unix::fs::symlink(t.path().join("d"), t.path().join("l")).unwrap();
    assert!(matches!(
        Dir::open(&t.path().join("l")),
        Err(SafeError::Symlink(p)) if p.ends_with("/l")
    ));
    assert!(Dir::create_all(&t.path().join("l/x"), 0o700).is_err());
}

#[test]
fn remove_checks_identity() {
    let t = tmp();
    let d = Dir::create_all(t.path(), 0o700).unwrap();
    let id = d.write("f", b"x", 0o600, None, false).unwrap();
    let other = d.write("g", b"y", 0o600, None, false).unwrap();
    assert!(!d.remove_file("f", Some(other)).unwrap());
    assert!(d.remove_file("f", Some(id)).unwrap());
    assert!(d.stat("f").unwrap().is_none());
    let (_sub, created) = d.create_subdir("s", 0o755).unwrap();
    assert!(created);
    let sid = d.stat("s").unwrap().unwrap().id;
    std::fs::write(t.path().join("s/foreign"), "x").unwrap();
    assert!(!d.remove_dir("s", sid).unwrap());
    assert!(t.path().join("s/foreign").exists());
}
