//! The few rtnetlink operations the network driver needs, all in the host
//! namespace: bridges, their addresses, and veth pairs.

use anyhow::{Context, Result};
use futures::TryStreamExt;
use ipnetwork::IpNetwork;
use netlink_packet_route::address::AddressHeaderFlags;
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth};

/// True for "no such device": looking up or deleting a link that is gone.
fn is_gone(e: &rtnetlink::Error) -> bool {
    match e {
        rtnetlink::Error::NetlinkError(m) => m
            .code
            .is_some_and(|c| -c.get() == libc::ENODEV || -c.get() == libc::ENOENT),
        _ => false,
    }
}

/// The index of link `name`, if there is one.
pub async fn find(h: &Handle, name: &str) -> Result<Option<u32>> {
    let got = h
        .link()
        .get()
        .match_name(name.to_string())
        .execute()
        .try_next()
        .await;
    match got {
        Ok(msg) => Ok(msg.map(|m| m.header.index)),
        Err(e) if is_gone(&e) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("look up link {name}")),
    }
}

/// Delete link `name`; a link already gone is not an error.
pub async fn delete(h: &Handle, name: &str) -> Result<()> {
    let Some(index) = find(h, name).await? else {
        return Ok(());
    };
    match h.link().del(index).execute().await {
        Err(e) if !is_gone(&e) => Err(e).with_context(|| format!("delete link {name}")),
        _ => Ok(()),
    }
}

/// Make sure bridge `name` exists, is up and has `addrs`; returns its
/// index. Idempotent, so CreateNetwork can be replayed and Join can heal a
/// bridge lost with a reboot. A bridge created here is removed again if it
/// cannot be configured.
pub async fn ensure_bridge(h: &Handle, name: &str, addrs: &[IpNetwork]) -> Result<u32> {
    let (index, created) = match find(h, name).await? {
        Some(index) => (index, false),
        None => {
            h.link()
                .add(LinkBridge::new(name).build())
                .execute()
                .await
                .with_context(|| format!("create bridge {name}"))?;
            let index = find(h, name)
                .await?
                .with_context(|| format!("bridge {name} vanished after creation"))?;
            (index, true)
        }
    };
    let configured = configure_bridge(h, index, addrs)
        .await
        .with_context(|| format!("configure bridge {name}"));
    if configured.is_err() && created {
        // Best effort: the configuration error is the one worth reporting.
        let _ = h.link().del(index).execute().await;
    }
    configured.map(|()| index)
}

async fn configure_bridge(h: &Handle, index: u32, addrs: &[IpNetwork]) -> Result<()> {
    h.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await?;
    for a in addrs {
        // Replace, not add: the address may already be there.
        let mut req = h.address().add(index, a.ip(), a.prefix()).replace();
        if a.is_ipv6() {
            // The gateway is unique by construction; don't wait for DAD.
            req.message_mut().header.flags = AddressHeaderFlags::Nodad;
        }
        req.execute().await?;
    }
    Ok(())
}

/// Create the veth pair `host`/`peer`: `host` a port of bridge `master` and
/// up, `peer` with `mac` and down, both in the host namespace (libnetwork
/// moves the peer into the sandbox). A stale pair of those names goes first.
pub async fn create_veth(
    h: &Handle,
    host: &str,
    peer: &str,
    mac: [u8; 6],
    master: u32,
) -> Result<()> {
    delete(h, host).await?;
    delete(h, peer).await?;
    let peer_msg = LinkMessageBuilder::<LinkUnspec>::new()
        .name(peer.to_string())
        .address(mac.to_vec())
        .build();
    let msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(host.to_string())
        .controller(master)
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg)))
        .build();
    h.link()
        .add(msg)
        .execute()
        .await
        .with_context(|| format!("create veth pair {host}/{peer}"))?;
    let up = async {
        let index = find(h, host)
            .await?
            .with_context(|| format!("veth {host} vanished after creation"))?;
        h.link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .with_context(|| format!("set {host} up"))
    }
    .await;
    if up.is_err() {
        // Deleting one end deletes the pair; the first error is the one to report.
        let _ = delete(h, host).await;
    }
    up
}
