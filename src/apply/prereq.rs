//! Prerequisites, checked while planning, before the first change: the
//! `nft` command (present, recent enough) when the plan touches firewall
//! tables or cnm recorded writing some, and the kernel's support for every
//! kind of link the plan creates, probed by creating one in a throwaway
//! namespace (so a module the kernel can load on demand counts as there).

use crate::errors::{ErrorKind, PlanError};
use crate::firewall::nft;
use crate::model::Observed;
use crate::plan::{Op, Plan, Resource};
use crate::topology::Topology;
use nix::sched::{unshare, CloneFlags};
use rtnetlink::{LinkBridge, LinkMessageBuilder, LinkVeth, LinkVxlan};
use std::collections::BTreeSet;

/// Check what `plan` needs of the host: the `nft` command, and kernel
/// support for every link kind it creates. Errors name `file`.
pub async fn check(
    file: &str,
    topology: Option<&Topology>,
    plan: &Plan,
    obs: &Observed,
) -> Result<(), PlanError> {
    let fail = |message: String| PlanError::of_file(file, message).of_kind(ErrorKind::Host);
    let touches_firewall = plan
        .actions
        .iter()
        .any(|a| matches!(a.resource, Resource::Firewall(_)));
    match &obs.host.nft {
        None if touches_firewall => return Err(fail(nft::missing_hint())),
        None if obs.host.firewall_recorded => {
            return Err(fail(format!(
                "cnm wrote firewall tables for topology {}, but {}: they can be neither checked nor removed",
                plan.topology,
                nft::missing_hint()
            )))
        }
        Some(v) if touches_firewall && !nft::version_ok(v) => {
            let (a, b, c) = nft::MIN_NFT_VERSION;
            return Err(fail(format!(
                "nft {v} is too old: cnm needs nft {a}.{b}.{c} or newer (upgrade the nftables package)"
            )));
        }
        _ => {}
    }
    // Sandbox sysctls: the kernel must know the key (it is looked up in
    // the host's namespace; net.* keys exist in every namespace but a few
    // of the host's only, which apply then names).
    for a in plan.actions.iter().filter(|a| a.op != Op::Delete) {
        if let Resource::Namespace(n) = &a.resource {
            if let Some(k) = n
                .sysctls
                .keys()
                .find(|k| !std::path::Path::new("/proc/sys").join(k).exists())
            {
                return Err(fail(format!(
                    "sandbox {}: sysctl {} does not exist in this kernel",
                    n.sandbox,
                    k.replace('/', ".")
                )));
            }
        }
    }
    let kinds: BTreeSet<String> = plan
        .actions
        .iter()
        .filter(|a| matches!(a.op, Op::Create | Op::Replace))
        .flat_map(|a| link_kinds(&a.resource))
        .collect();
    match probe(&kinds).await.first() {
        Some(kind) => {
            Err(located(topology, plan, kind).unwrap_or_else(|| fail(missing_kind(kind))))
        }
        None => Ok(()),
    }
}

/// A missing link kind, located at the `driver:` of the first network the
/// plan would make one for.
fn located(t: Option<&Topology>, plan: &Plan, kind: &str) -> Option<PlanError> {
    let mut made = plan
        .actions
        .iter()
        .filter(|a| matches!(a.op, Op::Create | Op::Replace));
    let network = made.find_map(|a| match &a.resource {
        Resource::Link(l) if l.kind == kind => Some(&l.network),
        Resource::Endpoint(e) if e.kind == kind => Some(&e.network),
        _ => None,
    })?;
    let t = t?;
    let net = t.networks.get(network)?;
    let message = format!("network {network}: {}", missing_kind(kind));
    Some(PlanError::at(t, net.driver_loc, message).of_kind(ErrorKind::Host))
}

/// The kernel link kinds a resource is made of.
fn link_kinds(r: &Resource) -> Vec<String> {
    match r {
        Resource::Link(l) => vec![l.kind.clone()],
        Resource::Endpoint(e) => vec![e.kind.clone()],
        _ => Vec::new(),
    }
}

/// Kinds the kernel cannot create. One short-lived thread makes a
/// throwaway namespace and a netlink socket in it; the namespace goes
/// away with the socket.
pub async fn probe(kinds: &BTreeSet<String>) -> Vec<String> {
    if kinds.is_empty() {
        return Vec::new();
    }
    let rt = tokio::runtime::Handle::current();
    let made = std::thread::spawn(move || -> std::io::Result<_> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
        let _g = rt.enter();
        let (conn, handle, _) = rtnetlink::new_connection()?;
        Ok((conn, handle))
    })
    .join();
    let Ok(Ok((conn, handle))) = made else {
        return Vec::new(); // cannot probe: let the create itself report
    };
    let task = tokio::spawn(conn);
    let mut missing = Vec::new();
    for kind in kinds {
        let msg = match kind.as_str() {
            "bridge" => LinkBridge::new("probe0").build(),
            "veth" => LinkVeth::new("probe0", "probe1").build(),
            "vxlan" => LinkVxlan::new("probe0", 42).build(),
            other => LinkMessageBuilder::<rtnetlink::LinkUnspec>::new_with_info_kind(
                netlink_packet_route::link::InfoKind::Other(other.to_string()),
            )
            .name("probe0".to_string())
            .build(),
        };
        // Each probe link lives until the namespace goes; names differ by kind.
        let msg = rename(msg, kind);
        if let Err(e) = handle.link().add(msg).execute().await {
            if crate::netlink::errno(&e) == Some(libc::EOPNOTSUPP) {
                missing.push(kind.clone());
            }
        }
    }
    drop(handle);
    task.abort();
    missing
}

/// Give a probe link a name of its own (`p-<kind>`, within 15 bytes).
fn rename(
    mut msg: netlink_packet_route::link::LinkMessage,
    kind: &str,
) -> netlink_packet_route::link::LinkMessage {
    use netlink_packet_route::link::LinkAttribute;
    let name: String = format!("p-{kind}").chars().take(15).collect();
    for a in msg.attributes.iter_mut() {
        if let LinkAttribute::IfName(n) = a {
            *n = name.clone();
        }
    }
    msg
}

/// "the kernel cannot create ipvlan links: load its module (modprobe ipvlan)".
pub fn missing_kind(kind: &str) -> String {
    let module = module_for(kind).unwrap_or_else(|| usual_module(kind).to_string());
    format!(
        "this kernel cannot create {kind} links (the module is neither loaded nor loadable here): load it with `modprobe {module}`, or use another driver"
    )
}

/// The module that usually provides link kind `kind`, when the kernel's
/// own list does not say (it is not installed): the kind's name, but for
/// the kinds whose module is named otherwise.
fn usual_module(kind: &str) -> &str {
    match kind {
        "vlan" => "8021q",
        "bond" => "bonding",
        other => other,
    }
}

/// The module that provides link kind `kind`, from the kernel's
/// modules.alias (`alias rtnl-link-<kind> <module>`).
fn module_for(kind: &str) -> Option<String> {
    let release = nix::sys::utsname::uname().ok()?;
    let path = format!(
        "/lib/modules/{}/modules.alias",
        release.release().to_string_lossy()
    );
    let text = std::fs::read_to_string(path).ok()?;
    let want = format!("rtnl-link-{kind}");
    text.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next() == Some("alias") && w.next() == Some(want.as_str()))
            .then(|| w.next().map(str::to_string))
            .flatten()
    })
}
