//! The effectful seam, proven by a driver that lives here, outside cnm: it
//! learns its interface's name and MAC only while making it (as a plugin
//! would answer them), so the first plan says "(known after apply)", the
//! next plans use the recorded values and have nothing to do, and a crash
//! between the driver's call and cnm's record converges on the next apply.
//!
//! Privileged: the outer test re-runs this binary on a private host
//! (tests/support/private-host.sh); the inner steps do nothing elsewhere.

#[path = "support/rerun.rs"]
mod rerun;

use cnm::apply::{self, learned};
use cnm::drivers::{
    Caps, Driver, Effect, Gateway, Ipam, Kernel, Learned, NetworkCtx, NetworkInput, Opaque,
    Options, Registry,
};
use cnm::model::{fmt_mac, EndpointRes, State};
use cnm::naming::{self, MarkKind};
use cnm::netlink::{index_of, sync_addrs};
use cnm::spec::{self, Diagnostics, Loc, Topology};
use ipnetwork::IpNetwork;
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{LinkMessageBuilder, LinkUnspec, LinkVeth};
use std::collections::BTreeSet;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::Arc;

const INNER: &str = "CNM_EXTERNAL_INNER";
const CRASH: &str = "CNM_EXTERNAL_CRASH";
const CRASH_CODE: i32 = 86;
/// The bridge the test makes; host ends of the driver's veths join it.
const BRIDGE: &str = "extbr0";

/// Plugs each endpoint into a bridge it does not own, through a veth pair
/// whose sandbox end gets a name and MAC it picks at random.
struct ExternalDriver;

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n.div_ceil(2)];
    getrandom(&mut b);
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<String>()
        .chars()
        .take(n)
        .collect()
}

fn getrandom(buf: &mut [u8]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .expect("/dev/urandom");
}

impl Driver for ExternalDriver {
    fn name(&self) -> &'static str {
        "external"
    }

    fn caps(&self) -> Caps {
        Caps {
            interfaces: true,
            ipam: Ipam::Lowest,
            gateway: Gateway::Outside,
            addressing: true,
            needs_subnet: true,
            internal: true,
            ports: false,
            exclusive: false,
            host_stack: false,
            spans_hosts: false,
            network_link: false,
        }
    }

    fn check(&self, _net: &NetworkInput<'_>, _d: &mut Diagnostics) -> Options {
        Options(Arc::new(Opaque::default()))
    }

    fn desired(&self, ctx: &NetworkCtx<'_>, out: &mut State) -> Result<(), (Loc, String)> {
        for ep in &ctx.endpoints {
            let known = ctx.learned.get(&ep.spec.name);
            let value = |k: &str| known.and_then(|l| l.get(k)).cloned();
            let mut unknown = Vec::new();
            let ifname = value(learned::IFNAME).unwrap_or_else(|| {
                unknown.push(learned::IFNAME.to_string());
                ep.ifname.clone()
            });
            let mac = match value(learned::MAC) {
                Some(m) => Some(spec::parse_mac(&m).map_err(|e| (ep.spec.loc, e.to_string()))?),
                None => {
                    unknown.push(learned::MAC.to_string());
                    None
                }
            };
            let addrs: BTreeSet<IpNetwork> = ep.ipv4.map(IpNetwork::V4).into_iter().collect();
            out.endpoints.insert(
                ep.spec.name.clone(),
                EndpointRes {
                    endpoint: ep.spec.name.clone(),
                    network: ctx.network.name.clone(),
                    sandbox: ep.spec.sandbox.clone(),
                    netns: ep.netns.clone(),
                    kind: "veth".into(),
                    ifname,
                    mac,
                    mtu: 1500,
                    addrs,
                    up: true,
                    host: None,
                    settings: Vec::new(),
                    unknown,
                    made_with: String::new(),
                    driver: self.name().into(),
                },
            );
        }
        Ok(())
    }

    fn create_endpoint<'a>(&'a self, e: &'a EndpointRes, k: &'a dyn Kernel) -> Effect<'a, Learned> {
        Box::pin(async move {
            let err = |source| apply::ApplyError::Kernel {
                action: format!("external: create {}", e.endpoint),
                source,
            };
            // What a plugin would decide on its own.
            let host_name = format!("xt{}", random_hex(10));
            let name = format!("ext{}", random_hex(6));
            let mut mac = [0u8; 6];
            getrandom(&mut mac);
            mac[0] = (mac[0] & 0xfe) | 0x02; // unicast, locally administered

            // cnm's protocol: made under the journaled temporary name,
            // marked, then renamed.
            let tmp = k.temp_name(&e.endpoint)?;
            let ns = k.netns_file(&e.netns)?;
            let bridge = index_of(k.host(), BRIDGE).await.map_err(err)?;
            let peer = LinkMessageBuilder::<LinkUnspec>::new()
                .name(tmp.clone())
                .mtu(e.mtu)
                .address(mac.to_vec())
                .setns_by_fd(ns.as_raw_fd());
            let msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
                .name(host_name.clone())
                .controller(bridge)
                .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
                .build();
            k.host().link().add(msg).execute().await.map_err(err)?;
            let h = k.sandbox(&e.netns)?;
            let idx = index_of(&h, &tmp).await.map_err(err)?;
            let mark = naming::mark(k.topology(), MarkKind::Endpoint, &e.endpoint);
            h.link()
                .set(LinkUnspec::new_with_index(idx).alias(mark).build())
                .execute()
                .await
                .map_err(err)?;
            h.link()
                .set(
                    LinkUnspec::new_with_index(idx)
                        .name(name.clone())
                        .up()
                        .build(),
                )
                .execute()
                .await
                .map_err(err)?;
            let host_idx = index_of(k.host(), &host_name).await.map_err(err)?;
            k.host()
                .link()
                .set(LinkUnspec::new_with_index(host_idx).up().build())
                .execute()
                .await
                .map_err(err)?;
            sync_addrs(&h, idx, &BTreeSet::new(), &e.addrs)
                .await
                .map_err(err)?;
            if std::env::var_os(CRASH).is_some() {
                // The call is done; cnm has not recorded what it returns.
                std::process::exit(CRASH_CODE);
            }
            Ok(Learned::from([
                (learned::IFNAME.to_string(), name),
                (learned::MAC.to_string(), fmt_mac(&mac)),
            ]))
        })
    }
}

fn registry() -> Registry {
    Registry::builtin().with(Arc::new(ExternalDriver))
}

fn topology(sandboxes: &[&str]) -> Topology {
    let mut text = String::from(
        "version: 1\nname: ext\nnetworks:\n  x: { driver: external, subnet: 10.66.0.0/24, internal: true }\nsandboxes:\n",
    );
    for s in sandboxes {
        text.push_str(&format!("  {s}: {{}}\n"));
    }
    text.push_str("endpoints:\n");
    for s in sandboxes {
        text.push_str(&format!("  {s}-x: {{ network: x, sandbox: {s} }}\n"));
    }
    spec::parse_with(&registry(), "ext.yaml", &text).expect("valid topology")
}

fn sh(cmd: &str) -> String {
    let out = Command::new("bash").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (name, MAC) of the interface carrying endpoint `e`'s mark in `netns`.
fn kernel_iface(netns: &str, e: &str) -> (String, String) {
    let out = sh(&format!("ip -n {netns} -o link show"));
    let line = out
        .lines()
        .find(|l| l.contains(&format!("alias cnm:ext:endpoint:{e}")))
        .unwrap_or_else(|| panic!("no interface of {e} in {netns}:\n{out}"));
    let name = line.split(':').nth(1).unwrap().trim();
    let name = name.split('@').next().unwrap().to_string();
    let mac = line
        .split("link/ether ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    (name, mac)
}

fn ping(netns: &str, ip: &str) {
    sh(&format!("ip netns exec {netns} ping -c1 -W2 -q {ip}"));
}

async fn plan(t: &Topology) -> apply::Planned {
    apply::Engine::new(registry()).plan(t).await.expect("plan")
}

async fn converge(t: &Topology) {
    apply::Engine::new(registry())
        .apply(t, |_| Ok(()))
        .await
        .expect("apply");
}

/// The recorded values of endpoint `e` match the kernel, and the desired
/// state uses them.
fn assert_known(p: &apply::Planned, e: &str, netns: &str) {
    let d = &p.desired.endpoints[e];
    assert!(d.unknown.is_empty(), "{e} still unknown: {:?}", d.unknown);
    let (name, mac) = kernel_iface(netns, e);
    assert!(name.starts_with("ext"), "{name}");
    assert_eq!(d.ifname, name);
    assert_eq!(d.mac.map(|m| fmt_mac(&m)), Some(mac.clone()));
    let rec = cnm::store::Store::system()
        .topology("ext")
        .unwrap()
        .learned()
        .unwrap();
    assert_eq!(rec[e][learned::IFNAME], name);
    assert_eq!(rec[e][learned::MAC], mac);
}

#[test]
fn external_driver_learns_during_apply() {
    rerun::on_private_host("external driver", "inner", INNER);
}

/// The steps, on a private host only.
#[tokio::test]
async fn inner() {
    if !rerun::is_inner(INNER) {
        return;
    }
    sh(&format!(
        "ip link add {BRIDGE} type bridge && ip link set {BRIDGE} up"
    ));
    let t = topology(&["a", "b"]);

    // First plan: the driver cannot know name and MAC yet.
    let first = plan(&t).await;
    let text = first.plan.render_text(&t.file, false);
    assert!(
        text.contains("endpoint a-x (a (known after apply), veth)")
            && text.contains("mac (known after apply)"),
        "{text}"
    );
    converge(&t).await;

    // Next plan: the recorded values, and nothing to do.
    let second = plan(&t).await;
    assert!(
        second.plan.is_empty(),
        "{}",
        second.plan.render_text(&t.file, false)
    );
    assert_known(&second, "a-x", "ext-a");
    assert_known(&second, "b-x", "ext-b");
    ping("ext-a", "10.66.0.3");
    ping("ext-b", "10.66.0.2");
    // Names through the sandbox's hosts file.
    let exec = env!("CARGO_BIN_EXE_cnm");
    sh(&format!("{exec} exec a -- ping -c1 -W2 -q b"));

    // A crash after the driver's call, before cnm records its answer.
    let t3 = topology(&["a", "b", "c"]);
    let crashed = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "inner_crash", "--nocapture", "--test-threads=1"])
        .env(INNER, "1")
        .env(CRASH, "1")
        .status()
        .unwrap();
    assert_eq!(crashed.code(), Some(CRASH_CODE), "the crash did not happen");
    let rec = cnm::store::Store::system()
        .topology("ext")
        .unwrap()
        .learned()
        .unwrap();
    assert!(!rec.contains_key("c-x"), "recorded before the crash");
    // The next plan reads the answer back from the marked interface.
    let after_crash = plan(&t3).await;
    assert!(after_crash.desired.endpoints["c-x"].unknown.is_empty());
    converge(&t3).await;
    let settled = plan(&t3).await;
    assert!(
        settled.plan.is_empty(),
        "{}",
        settled.plan.render_text(&t3.file, false)
    );
    assert_known(&settled, "c-x", "ext-c");
    ping("ext-a", "10.66.0.4");

    // Destroy: every interface goes (with its host end); the bridge stays.
    apply::Engine::new(registry())
        .destroy("ext", "ext", |_| Ok(()))
        .await
        .expect("destroy");
    let links = sh("ip -o link show");
    assert!(!links.contains(": xt"), "host ends left behind:\n{links}");
    assert!(links.contains(BRIDGE));
}

/// Applies three sandboxes with the driver set to exit after its call.
#[tokio::test]
async fn inner_crash() {
    if std::env::var_os(INNER).is_none() || std::env::var_os(CRASH).is_none() {
        return;
    }
    converge(&topology(&["a", "b", "c"])).await;
    panic!("the driver should have ended the process");
}
