//! A CNI network as a topology of cnm's: `cni-<name>`, one network, and per
//! attachment (a container's interface) an endpoint in a sandbox that
//! borrows the container's namespace. ADD, DEL and GC are edits of that
//! topology's record, pure functions here (the engine applies them under
//! its lock).

use crate::topology::file::{FileEndpoint, FileNetwork, FileTopDns, FileTopology};
use std::collections::BTreeSet;

/// The prefix of the topologies CNI networks become.
pub const TOPOLOGY_PREFIX: &str = "cni-";

/// One attachment, as the runtime names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Attachment {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_IFNAME`.
    pub ifname: String,
}

/// What ADD asks for: the network as the configuration defines it, and
/// the namespace the attachment goes in.
pub struct Add<'a> {
    pub topology: &'a str,
    pub network: &'a str,
    pub definition: &'a FileNetwork,
    pub attachment: &'a Attachment,
    pub netns: &'a str,
}

/// The endpoint of `a` in `t`, by the container ID its sandbox records
/// and the interface name.
pub fn find<'t>(t: &'t FileTopology, a: &Attachment) -> Option<&'t str> {
    t.endpoints
        .iter()
        .find(|(_, e)| {
            e.ifname.as_deref() == Some(a.ifname.as_str())
                && t.sandboxes
                    .get(&e.sandbox)
                    .and_then(|s| s.container_id.as_deref())
                    == Some(a.container_id.as_str())
        })
        .map(|(name, _)| name.as_str())
}

/// The topology with attachment `add` (kept as it is when present, its
/// namespace updated), and the network as the configuration defines it now.
pub fn add(before: Option<FileTopology>, add: &Add<'_>) -> FileTopology {
    let mut t = before.unwrap_or_else(|| FileTopology {
        version: 1,
        name: add.topology.to_string(),
        ..FileTopology::default()
    });
    // The runtime owns names and resolv.conf: no embedded resolver.
    t.dns = Some(FileTopDns { embedded: false });
    t.networks.retain(|name, _| name == add.network);
    t.networks
        .insert(add.network.to_string(), add.definition.clone());
    let sandbox = match find(&t, add.attachment) {
        Some(ep) => t.endpoints[ep].sandbox.clone(),
        None => {
            let name = name_for(&t, add.attachment);
            // A container's other attachments share its sandbox.
            let sandbox = sandbox_of(&t, &add.attachment.container_id, add.netns)
                .unwrap_or_else(|| name.clone());
            t.endpoints.insert(
                name,
                FileEndpoint {
                    network: add.network.to_string(),
                    sandbox: sandbox.clone(),
                    ifname: Some(add.attachment.ifname.clone()),
                    ..FileEndpoint::default()
                },
            );
            sandbox
        }
    };
    let sb = t.sandboxes.entry(sandbox).or_default();
    sb.netns = Some(add.netns.to_string());
    sb.container_id = Some(add.attachment.container_id.clone());
    for e in t.endpoints.values_mut() {
        e.network = add.network.to_string();
    }
    t
}

/// The topology without attachment `a` (`None`: nothing is left).
pub fn del(before: Option<FileTopology>, a: &Attachment) -> Option<FileTopology> {
    let mut t = before?;
    if let Some(ep) = find(&t, a).map(str::to_string) {
        t.endpoints.remove(&ep);
    }
    prune(t)
}

/// The topology with only the attachments in `valid` (GC).
pub fn keep_only(
    before: Option<FileTopology>,
    valid: &BTreeSet<Attachment>,
) -> Option<FileTopology> {
    let mut t = before?;
    let sandboxes = t.sandboxes.clone();
    t.endpoints.retain(|_, e| {
        let id = sandboxes
            .get(&e.sandbox)
            .and_then(|s| s.container_id.clone());
        match (id, &e.ifname) {
            (Some(container_id), Some(ifname)) => valid.contains(&Attachment {
                container_id,
                ifname: ifname.clone(),
            }),
            _ => false,
        }
    });
    prune(t)
}

/// Sandboxes without endpoints go; without attachments, the topology.
fn prune(mut t: FileTopology) -> Option<FileTopology> {
    let used: BTreeSet<String> = t.endpoints.values().map(|e| e.sandbox.clone()).collect();
    t.sandboxes.retain(|name, _| used.contains(name));
    (!t.endpoints.is_empty()).then_some(t)
}

/// The sandbox of container `id` in namespace `netns`, if it has one.
fn sandbox_of(t: &FileTopology, id: &str, netns: &str) -> Option<String> {
    t.sandboxes
        .iter()
        .find(|(_, s)| s.container_id.as_deref() == Some(id) && s.netns.as_deref() == Some(netns))
        .map(|(name, _)| name.clone())
}

/// `<first 12 of the container ID>-<ifname>`, or, when that is taken (two
/// IDs sharing 12 characters) or not a valid name, `a` and a digest of
/// both.
fn name_for(t: &FileTopology, a: &Attachment) -> String {
    let short: String = a.container_id.chars().take(12).collect();
    let plain = format!("{short}-{}", a.ifname);
    let valid = crate::naming::valid_identifier(&plain, crate::store::MAX_OBJECT_NAME).is_ok();
    let taken = |n: &str| t.endpoints.contains_key(n) || t.sandboxes.contains_key(n);
    if valid && !taken(&plain) {
        return plain;
    }
    let digest = crate::naming::short_hash(&[&a.container_id, &a.ifname], 16);
    format!("a{digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every attachment the topology holds.
    pub fn all(t: &FileTopology) -> Vec<Attachment> {
        t.endpoints
            .values()
            .filter_map(|e| {
                let sb = t.sandboxes.get(&e.sandbox)?;
                Some(Attachment {
                    container_id: sb.container_id.clone()?,
                    ifname: e.ifname.clone()?,
                })
            })
            .collect()
    }

    fn att(id: &str, ifname: &str) -> Attachment {
        Attachment {
            container_id: id.into(),
            ifname: ifname.into(),
        }
    }

    fn added(t: Option<FileTopology>, a: &Attachment, netns: &str) -> FileTopology {
        let net = FileNetwork {
            subnet: Some("10.160.0.0/24".into()),
            ..FileNetwork::default()
        };
        add(
            t,
            &Add {
                topology: "cni-pods",
                network: "pods",
                definition: &net,
                attachment: a,
                netns,
            },
        )
    }

    #[test]
    fn attachments_are_named_by_container_and_interface() {
        let a = att("0123456789abcdef0123", "eth0");
        let t = added(None, &a, "/run/netns/c1");
        assert_eq!(t.name, "cni-pods");
        assert_eq!(find(&t, &a), Some("0123456789ab-eth0"));
        let sb = &t.sandboxes["0123456789ab-eth0"];
        assert_eq!(sb.container_id.as_deref(), Some("0123456789abcdef0123"));
        assert_eq!(sb.netns.as_deref(), Some("/run/netns/c1"));
        assert_eq!(
            t.endpoints["0123456789ab-eth0"].ifname.as_deref(),
            Some("eth0")
        );
        assert!(!t.dns.as_ref().unwrap().embedded);
        // Adding it again changes nothing.
        assert_eq!(added(Some(t.clone()), &a, "/run/netns/c1"), t);
    }

    #[test]
    fn a_shared_prefix_gets_a_digest_and_dels_find_each() {
        let a = att("0123456789abcdef", "eth0");
        let b = att("0123456789abXXXX", "eth0");
        let t = added(Some(added(None, &a, "/n/a")), &b, "/n/b");
        assert_eq!(t.endpoints.len(), 2);
        let nb = find(&t, &b).unwrap().to_string();
        assert!(nb.starts_with('a') && nb != "0123456789ab-eth0", "{nb}");
        let t = del(Some(t), &a).unwrap();
        assert_eq!(find(&t, &b), Some(nb.as_str()));
        assert_eq!(t.sandboxes.len(), 1);
        assert!(del(Some(t), &b).is_none(), "the last DEL leaves nothing");
    }

    #[test]
    fn a_second_interface_of_a_container_shares_its_sandbox() {
        let t = added(None, &att("c1", "eth0"), "/n/c1");
        let t = added(Some(t), &att("c1", "net1"), "/n/c1");
        assert_eq!(t.sandboxes.len(), 1);
        assert_eq!(t.endpoints["c1-net1"].sandbox, "c1-eth0");
        let t = del(Some(t), &att("c1", "eth0")).unwrap();
        assert_eq!(t.sandboxes.len(), 1, "still used by net1");
    }

    #[test]
    fn gc_keeps_only_the_valid_attachments() {
        let t = added(None, &att("c1", "eth0"), "/n/c1");
        let t = added(Some(t), &att("c2", "eth0"), "/n/c2");
        let valid = [att("c2", "eth0")].into_iter().collect();
        let t = keep_only(Some(t), &valid).unwrap();
        assert_eq!(all(&t), vec![att("c2", "eth0")]);
        assert!(keep_only(Some(t), &BTreeSet::new()).is_none());
    }
}
