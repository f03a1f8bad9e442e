//! Which namespaces are the topology's: marks, records, placeholders.

use super::*;

#[test]
fn loopback_mark_owns_the_namespace_under_its_derived_name() -> TestResult {
    let netns = naming::netns_name(T, "alpha");
    let c = Fixture::default().run(view_with(vec![candidate(
        &netns,
        42,
        ns_with_lo(mark(MarkKind::Sandbox, "alpha"))?,
    )]));
    let o = c
        .owned
        .get("alpha")
        .ok_or("alpha is not owned by its mark")?;
    assert_eq!((o.netns.as_str(), o.ino, o.legacy), ("t-alpha", 42, false));
    let ns = &c.state.namespaces["alpha"];
    assert_eq!(ns.netns, "t-alpha");
    assert_eq!(ns.ino, Some(42));
    assert!(ns.lo_up);
    assert_eq!(ns.lo_addrs, crate::model::loopback_addrs());
    assert!(c.facts.owned_netns.contains("t-alpha"));
    assert!(c.facts.netns.contains("t-alpha"));
    Ok(())
}

#[test]
fn a_mark_under_another_name_does_not_own() -> TestResult {
    // The mark says sandbox alpha, whose namespace is t-alpha: a namespace
    // of any other name carrying it (a copy, a rename) is not alpha's.
    let c = Fixture::default().run(view_with(vec![
        candidate("t-beta", 1, ns_with_lo(mark(MarkKind::Sandbox, "alpha"))?),
        candidate("alpha", 2, ns_with_lo(mark(MarkKind::Sandbox, "alpha"))?),
    ]));
    assert!(c.owned.is_empty(), "{:?}", c.owned.keys());
    assert!(c.state.namespaces.is_empty());
    assert!(c.facts.owned_netns.is_empty());
    // Both names are still known to exist (so a plan cannot take them).
    assert!(c.facts.netns.contains("t-beta") && c.facts.netns.contains("alpha"));
    Ok(())
}

#[test]
fn a_loopback_mark_of_another_kind_does_not_own() -> TestResult {
    let c = Fixture::default().run(view_with(vec![candidate(
        "t-alpha",
        1,
        ns_with_lo(mark(MarkKind::Endpoint, "alpha"))?,
    )]));
    assert!(c.owned.is_empty());
    Ok(())
}

#[test]
fn the_right_name_alone_does_not_own() -> TestResult {
    let c = Fixture::default().run(view_with(vec![candidate("t-alpha", 9, ns_with_lo(None)?)]));
    assert!(c.owned.is_empty());
    assert!(c.state.namespaces.is_empty());
    assert!(!c.facts.owned_netns.contains("t-alpha"));
    assert!(c.facts.netns.contains("t-alpha"));
    Ok(())
}

#[test]
fn a_record_owns_only_the_namespace_with_its_inode() -> TestResult {
    let mut f = Fixture::default();
    f.records.insert("alpha".into(), record("t-alpha", Some(7)));
    let same = f.run(view_with(vec![candidate("t-alpha", 7, ns_with_lo(None)?)]));
    let o = same
        .owned
        .get("alpha")
        .ok_or("the recorded inode does not own alpha")?;
    assert!(!o.legacy);
    assert_eq!(same.state.namespaces["alpha"].ino, Some(7));

    // The same name, another namespace (deleted and made again by someone).
    let other = f.run(view_with(vec![candidate("t-alpha", 8, ns_with_lo(None)?)]));
    assert!(other.owned.is_empty());
    assert!(other.state.namespaces.is_empty());
    Ok(())
}

#[test]
fn a_record_without_inode_owns_as_legacy() -> TestResult {
    let mut f = Fixture::default();
    f.records.insert("alpha".into(), record("t-alpha", None));
    let c = f.run(view_with(vec![candidate("t-alpha", 3, ns_with_lo(None)?)]));
    assert!(c.owned["alpha"].legacy);
    Ok(())
}

#[test]
fn a_mark_wins_over_a_stale_record() -> TestResult {
    // The record names another inode, the loopback mark is there: owned
    // through the mark.
    let mut f = Fixture::default();
    f.records
        .insert("alpha".into(), record("t-alpha", Some(100)));
    let c = f.run(view_with(vec![candidate(
        "t-alpha",
        5,
        ns_with_lo(mark(MarkKind::Sandbox, "alpha"))?,
    )]));
    let o = &c.owned["alpha"];
    assert_eq!((o.ino, o.legacy), (5, false));
    Ok(())
}

#[test]
fn journaled_placeholders_are_stray_mount_points() -> TestResult {
    let mut f = Fixture::default();
    f.journaled.insert("t-beta".into());
    let id = FileId { dev: 1, ino: 77 };
    let mut view = KernelView::default();
    view.placeholders.insert("t-beta".into(), id);
    view.placeholders
        .insert("t-gamma".into(), FileId { dev: 1, ino: 78 });
    let c = f.run(view);
    assert_eq!(
        c.state.strays["t-beta"].what,
        StrayKind::Mountpoint {
            netns: "t-beta".into(),
            id: Some(id)
        }
    );
    // Not journaled: someone else's empty file, left alone.
    assert!(!c.state.strays.contains_key("t-gamma"));
    assert!(c.facts.owned_netns.contains("t-beta"));
    assert!(!c.facts.owned_netns.contains("t-gamma"));
    Ok(())
}

// ---- links ----
