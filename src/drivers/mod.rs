//! Network drivers as providers. A driver owns everything that is its
//! own: its `options` (parsed into a typed value, errors located), how its
//! endpoints are addressed ([`Caps`]), the kernel objects its networks need
//! (links, endpoints, entries), how to make them (the only kernel work a
//! driver does; the engine changes, checks and deletes them), its firewall
//! rules and sysctls, and its part of `show`. The engine (`spec`,
//! `desired`, `observe`, `diff`, `apply`) finds drivers by the name a file
//! gives, in a [`Registry`], and names none of them.
//!
//! Adding a driver: a folder here with a type implementing [`Driver`], and
//! one line in [`Registry::builtin`]. See docs/DESIGN.md.

mod bridge;
mod cni;
mod host;
mod ipvlan;
mod learned;
mod macvlan;
mod null;
mod overlay;
mod parent;
pub mod remote;
mod veth;

use crate::errors::ApplyError;
pub use crate::model::ips;
use crate::model::{EndpointRes, FwRule, HostFacts, LinkRes, Mac, State, SysctlRes};
use crate::topology::file::FileNetwork;
use crate::topology::raw::RawNetwork;
pub use crate::topology::{Caps, DriverOptions, Gateway, Ipam, Options};
use crate::topology::{Diagnostics, Host, Loc, Network, Topology};
use futures::future::BoxFuture;
use ipnetwork::{Ipv4Network, Ipv6Network};
use netlink_packet_route::link::LinkInfo;
use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

/// Options of a driver cnm does not interpret: kept as written.
#[derive(Debug, Clone, Default)]
pub struct Opaque(pub BTreeMap<String, serde_json::Value>);

impl DriverOptions for Opaque {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn to_file(&self) -> BTreeMap<String, serde_json::Value> {
        self.0.clone()
    }
}

/// What a driver's `check` sees of a network in the file.
/// Docker's driver-independent option for a network's MTU
/// (`docker network create -o com.docker.network.driver.mtu=1400`): the
/// engine reads it as the network's `mtu`; drivers skip it.
pub const DOCKER_MTU_OPTION: &str = "com.docker.network.driver.mtu";

pub struct NetworkInput<'a> {
    pub topology: &'a str,
    pub name: &'a str,
    /// Where the network is declared (for what its options lack).
    pub loc: Loc,
    pub raw: &'a RawNetwork,
    pub hosts: &'a BTreeMap<String, Host>,
}

/// A network's resolved addressing (explicit, kept or allocated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addressing {
    /// IPv4 gateway with the subnet's prefix length (e.g. 10.0.0.1/24).
    pub gateway_v4: Option<Ipv4Network>,
    pub gateway_v6: Option<Ipv6Network>,
    /// An IPAM plugin gives the pool, and has not yet: the network's
    /// subnets and gateways are known after apply.
    pub pending: bool,
    /// The IPAM plugin's address space (`None`: cnm's own IPAM).
    pub address_space: Option<String>,
}

/// One endpoint with everything IPAM and interface naming decided.
#[derive(Debug, Clone)]
pub struct ResolvedEndpoint<'a> {
    pub spec: &'a crate::topology::Endpoint,
    pub ipv4: Option<Ipv4Network>,
    pub ipv6: Option<Ipv6Network>,
    pub mac: Option<Mac>,
    /// Interface name inside the sandbox.
    pub ifname: String,
    /// The sandbox's namespace.
    pub netns: String,
}

impl ResolvedEndpoint<'_> {
    /// Its addresses, both families, as the interface carries them.
    pub fn addrs(&self) -> BTreeSet<ipnetwork::IpNetwork> {
        let v4 = self.ipv4.map(ipnetwork::IpNetwork::V4);
        v4.into_iter()
            .chain(self.ipv6.map(ipnetwork::IpNetwork::V6))
            .collect()
    }
}

/// Values a driver learned while making an endpoint (Terraform's "known
/// after apply"), recorded and given back to it on the next plans.
pub type Learned = BTreeMap<String, String>;

/// The learned key naming the driver that made an endpoint, for endpoints
/// the kernel cannot tie to a network (no host end): noted before the
/// first change, so even an apply that failed before its record can be
/// undone by that driver.
pub const LEARNED_DRIVER: &str = "driver";
/// The learned key naming the network of such an endpoint.
pub const LEARNED_NETWORK: &str = "network";
/// The learned key of the addresses a driver's plugins gave an endpoint
/// (comma-separated CIDRs) when cnm's IPAM gave none: the engine names
/// the endpoint by them in hosts files and the resolver.
pub const LEARNED_ADDRS: &str = "addrs";
/// The learned key holding an endpoint's `made_with` when it was made.
pub const LEARNED_MADE_WITH: &str = "made_with";

/// Everything a driver needs to describe one network's objects, borrowed.
pub struct NetworkCtx<'a> {
    pub topology: &'a str,
    pub network: &'a Network,
    pub addressing: &'a Addressing,
    /// The endpoints realized on this machine.
    pub endpoints: Vec<ResolvedEndpoint<'a>>,
    /// The whole file and this machine's entry in `hosts:`, for networks
    /// that span hosts.
    pub full: &'a Topology,
    pub me: Option<&'a Host>,
    pub facts: &'a HostFacts,
    /// Addresses of every endpoint of the file (this host's and others').
    pub addresses: &'a BTreeMap<String, (Option<Ipv4Network>, Option<Ipv6Network>)>,
    /// What the driver learned on earlier applies, by endpoint.
    pub learned: &'a BTreeMap<String, Learned>,
}

/// A driver's networks, for its firewall rules.
pub struct FirewallCtx<'a> {
    pub topology: &'a Topology,
    pub networks: Vec<&'a Network>,
    pub state: &'a State,
    /// Families whose iptables `filter FORWARD` chain exists.
    pub forward_chains: &'a [String],
}

/// A driver's firewall rules and sysctls.
#[derive(Debug, Default)]
pub struct FirewallPart {
    pub rules: Vec<FwRule>,
    /// Elements of the inet table's maps (merged by map name).
    pub maps: Vec<crate::model::FwMap>,
    pub sysctls: BTreeMap<String, SysctlRes>,
}

/// The kernel work a driver does, through the engine's connections.
pub trait Kernel: Send + Sync {
    fn topology(&self) -> &str;
    /// The host namespace.
    fn host(&self) -> &rtnetlink::Handle;
    /// A sandbox's namespace.
    fn sandbox(&self, netns: &str) -> Result<rtnetlink::Handle, ApplyError>;
    /// The namespace file of a sandbox (to create a link inside it).
    fn netns_file(&self, netns: &str) -> Result<std::fs::File, ApplyError>;
    /// The temporary name a link is created under (see the journal).
    fn temp_name(&self, ifname: &str) -> Result<String, ApplyError>;
    /// What was recorded as learned about an endpoint.
    fn learned(&self, endpoint: &str) -> Learned;
    /// Record what is learned so far about an endpoint, at once (a driver
    /// that talks to a plugin notes what the plugin holds before and after
    /// each call, so a crash in between is cleaned up next time).
    fn note(&self, endpoint: &str, values: &Learned) -> Result<(), ApplyError>;
    /// A plugin could not be reached to give back `what`: whether its
    /// record is kept (the destroy then says so and exits 1; a later one
    /// gives it back) rather than forgotten (`--forget-unreachable`).
    fn keep_unreleased(&self, _plugin: &str, _what: &str) -> bool {
        false
    }
    /// The index of a link in the host namespace (a bridge that endpoints
    /// join: an executor may look it up once for all of them).
    fn host_index<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<u32, rtnetlink::Error>> {
        Box::pin(crate::netlink::index_of(self.host(), name))
    }
}

/// An observed link as a driver reads its settings.
pub struct LinkView<'a> {
    /// The kernel's kind (`vxlan`, `macvlan`).
    pub kind: &'a str,
    pub info: &'a [LinkInfo],
    /// The name of its lower link (a macvlan's parent). A sandbox link's
    /// lower link in another namespace is taken to be the host's: the only
    /// other namespace cnm makes links from.
    pub lower: Option<&'a str>,
}

pub type Effect<'a, T> = BoxFuture<'a, Result<T, ApplyError>>;

/// The part of `show` a driver writes for one of its networks.
pub struct ShowCtx<'a> {
    pub topology: &'a str,
    pub network: &'a str,
    pub state: &'a State,
}

pub trait Driver: Send + Sync {
    /// The name topology files use (`driver: NAME`).
    fn name(&self) -> &'static str;
    fn caps(&self) -> Caps;
    /// The caps of one network, given its checked options (ipvlan's mode
    /// decides where the gateway is); by default the driver's.
    fn network_caps(&self, _options: &Options) -> Caps {
        self.caps()
    }
    /// Parse and check this network's `options` (and what else in the
    /// file concerns this driver only), errors located.
    fn check(&self, net: &NetworkInput<'_>, d: &mut Diagnostics) -> Options;
    /// The JSON Schema of its `options` (for `cnm schema`).
    fn options_schema(&self) -> serde_json::Value {
        crate::topology::schema::no_options()
    }
    /// Checks over all of the file's networks of this driver (unique VNIs).
    fn check_together(&self, _nets: &[&Network], _d: &mut Diagnostics) {}
    /// Plan-time checks against the host (the parent link exists), errors
    /// located at the option they concern.
    fn check_host(&self, _net: &Network, _facts: &HostFacts) -> Result<(), (Loc, String)> {
        Ok(())
    }
    /// What a user should know about a network before applying it, each a
    /// sentence (a parent link that is down): warnings, not errors.
    fn host_warnings(&self, _net: &Network, _facts: &HostFacts) -> Vec<String> {
        Vec::new()
    }
    /// What one of its links holds host-wide beyond its name (which the
    /// engine claims for every link cnm makes), as (kind, value): another
    /// topology's claim of the same is a plan error (`network N: vni 7000
    /// is the vni of topology T`).
    fn claims(&self, _link: &LinkRes) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// Kernel link kinds it makes (probed before the first change).
    fn link_kinds(&self) -> &'static [&'static str] {
        &[]
    }
    /// The objects one network needs on this machine.
    fn desired(&self, ctx: &NetworkCtx<'_>, out: &mut State) -> Result<(), (Loc, String)>;
    /// Firewall rules and sysctls of all its networks here.
    fn firewall(&self, _ctx: &FirewallCtx<'_>) -> FirewallPart {
        FirewallPart::default()
    }
    /// Make one of its host links.
    fn create_link<'a>(&'a self, l: &'a LinkRes, _k: &'a dyn Kernel) -> Effect<'a, ()> {
        Box::pin(async move { Err(unsupported(self.name(), &l.ifname)) })
    }
    /// Make one of its endpoints; returns what it learned doing so.
    fn create_endpoint<'a>(
        &'a self,
        e: &'a EndpointRes,
        _k: &'a dyn Kernel,
    ) -> Effect<'a, Learned> {
        Box::pin(async move { Err(unsupported(self.name(), &e.endpoint)) })
    }
    /// Undo what `create_endpoint` did beyond the interface (a plugin's
    /// endpoint); the engine then deletes the interface if it is still
    /// there. Never fails for want of a plugin: destroy must complete.
    fn delete_endpoint<'a>(&'a self, _e: &'a EndpointRes, _k: &'a dyn Kernel) -> Effect<'a, ()> {
        Box::pin(async { Ok(()) })
    }
    /// The fixed settings of an observed link of a kind it makes.
    fn settings(&self, _link: &LinkView<'_>) -> Option<Vec<(String, String)>> {
        None
    }
    /// Its part of a network in `show` (options, subnets it alone knows).
    fn show(&self, _net: &mut FileNetwork, _ctx: &ShowCtx<'_>) {}
    /// Its part of an endpoint in `show` (`v`: as observed; `net`: its
    /// network as shown), so that applying what `show` prints changes
    /// nothing.
    fn show_endpoint(
        &self,
        _net: &FileNetwork,
        _ep: &mut crate::topology::file::FileEndpoint,
        _v: &EndpointRes,
    ) {
    }
    /// Plan time: of its endpoints the kernel shows (each with what was
    /// learned making it), those its plugins find broken (a CNI CHECK
    /// failing), with why; the plan replaces them. Read-only.
    fn broken<'a>(
        &'a self,
        _endpoints: Vec<(&'a EndpointRes, Learned)>,
    ) -> BoxFuture<'a, Vec<(String, String)>> {
        Box::pin(async { Vec::new() })
    }
}

fn unsupported(driver: &str, what: &str) -> ApplyError {
    ApplyError::Internal(format!("driver {driver} cannot make {what}"))
}

/// The drivers a run knows, by name, and the plugins it found.
#[derive(Clone)]
pub struct Registry {
    drivers: Vec<Arc<dyn Driver>>,
    /// Plugins by name; `None`: recorded by an earlier apply but not
    /// reachable now (plan works from the records, destroy forgets).
    plugins: BTreeMap<String, Option<crate::plugins::Plugin>>,
}

impl Registry {
    /// cnm's own drivers.
    pub fn builtin() -> &'static Registry {
        static BUILTIN: OnceLock<Registry> = OnceLock::new();
        BUILTIN.get_or_init(|| Registry {
            drivers: vec![
                Arc::new(bridge::BridgeDriver),
                Arc::new(null::NullDriver),
                Arc::new(host::HostDriver),
                Arc::new(overlay::OverlayDriver),
                Arc::new(macvlan::MacvlanDriver),
                Arc::new(ipvlan::IpvlanDriver),
                Arc::new(cni::CniDriver::default()),
            ],
            plugins: BTreeMap::new(),
        })
    }

    /// This registry plus plugin `name` (`None`: known from the records,
    /// unreachable now).
    pub fn with_plugin(&self, name: &str, plugin: Option<crate::plugins::Plugin>) -> Registry {
        let mut r = self.clone();
        r.plugins.insert(name.to_string(), plugin);
        r
    }

    /// This registry plus a driver for network plugin `name` (`None`:
    /// unreachable now; `scope` from its capabilities).
    pub fn with_plugin_driver(
        &self,
        name: &str,
        plugin: Option<crate::plugins::Plugin>,
        scope: &str,
    ) -> Registry {
        self.with(remote::RemoteDriver::new(name, plugin, scope))
    }

    /// Plugin `name`: `Some(None)` when it is known but unreachable.
    pub fn plugin(&self, name: &str) -> Option<Option<&crate::plugins::Plugin>> {
        self.plugins.get(name).map(Option::as_ref)
    }

    /// This registry plus `driver` (a library user's own driver).
    pub fn with(&self, driver: Arc<dyn Driver>) -> Registry {
        let mut r = self.clone();
        r.drivers.retain(|d| d.name() != driver.name());
        r.drivers.push(driver);
        r
    }

    pub fn get(&self, name: &str) -> Option<&dyn Driver> {
        self.drivers
            .iter()
            .find(|d| d.name() == name)
            .map(|d| d.as_ref())
    }

    /// Driver names, for messages.
    pub fn names(&self) -> Vec<&'static str> {
        self.drivers.iter().map(|d| d.name()).collect()
    }

    /// The fixed settings of an observed link, from whichever driver makes
    /// links of that kind (none: no settings).
    pub fn settings(&self, link: &LinkView<'_>) -> Vec<(String, String)> {
        self.drivers
            .iter()
            .find_map(|d| d.settings(link))
            .unwrap_or_default()
    }
}

/// Default MTU of networks (Docker's).
pub const DEFAULT_MTU: u32 = 1500;
