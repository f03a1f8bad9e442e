//! libnetwork's imperative verbs (a controller, new network, create
//! endpoint, new sandbox, join, endpoint info with its port mappings) on
//! top of the declarative engine: the [`Controller`] keeps a topology, and
//! each verb edits it and applies the whole of it (plan, execute, verify),
//! so what the verbs build is an ordinary cnm topology: `cnm plan`, `cnm
//! show` and `cnm destroy --topology NAME` see it like any other.
//!
//! ```no_run
//! use cnm::controller::{Controller, EndpointOptions, NetworkOptions, SandboxOptions};
//! # fn main() -> Result<(), cnm::controller::Error> {
//! let mut c = Controller::new("demo")?;
//! c.new_network("bridge", "network1", NetworkOptions::default())?;
//! c.create_endpoint("network1", "Endpoint1", EndpointOptions {
//!     ports: vec!["8080:80/tcp".into()],
//!     ..Default::default()
//! })?;
//! c.new_sandbox("container1", SandboxOptions {
//!     hostname: Some("test".into()),
//!     domainname: Some("docker.io".into()),
//!     ..Default::default()
//! })?;
//! c.join("Endpoint1", "container1")?;
//! let info = c.endpoint_info("Endpoint1")?;
//! println!("{:?}", info.ports);
//! # Ok(()) }
//! ```

use crate::apply::{self, ApplyError};
use crate::spec::file::{FileEndpoint, FileNetwork, FileSandbox, FileTopology};
use crate::spec::{SpecError, Topology};
use ipnetwork::IpNetwork;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// A network's settings, as in a topology file's `networks.NAME` (subnet,
/// options, ...); its driver is given to [`Controller::new_network`].
pub type NetworkOptions = FileNetwork;
/// A sandbox's settings, as in a topology file's `sandboxes.NAME`
/// (hostname, domainname, dns, ...).
pub type SandboxOptions = FileSandbox;

/// An endpoint's settings before it joins a sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointOptions {
    /// A fixed IPv4 address (else the network's IPAM gives one).
    pub address: Option<String>,
    /// A fixed MAC address (else one derived from the address).
    pub mac: Option<String>,
    /// More names the sandbox's peers find it by.
    pub aliases: Vec<String>,
    /// Published ports, Docker's syntax: `8080:80/tcp`, or `80` for a host
    /// port cnm chooses.
    pub ports: Vec<String>,
}

/// What went wrong in a verb. Nothing is changed when a verb fails before
/// its apply starts (bad names, unknown objects, an invalid topology).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The verb does not fit the topology (unknown network, endpoint
    /// joined already, ...).
    #[error("{0}")]
    Usage(String),
    /// The topology the verb would make is not valid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Planning or applying failed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// No runtime could be started, or the records could not be read.
    #[error("{0}")]
    Setup(String),
}

/// A published port of an endpoint, with the host port it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortBinding {
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// The host address it is published on (`None`: every address).
    pub host_ip: Option<IpAddr>,
    /// The port on the host.
    pub host_port: u16,
    /// The port in the sandbox.
    pub container_port: u16,
}

/// An endpoint as it is on the host now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointInfo {
    /// The endpoint's name.
    pub name: String,
    /// Its network.
    pub network: String,
    /// The sandbox it joined (empty while not joined).
    pub sandbox: String,
    /// Its interface in the sandbox (`eth0`, ...); empty while not joined.
    pub interface: String,
    /// Its MAC address (`02:42:...`), when it exists.
    pub mac: Option<String>,
    /// Its addresses with their prefix length.
    pub addresses: Vec<IpNetwork>,
    /// Its published ports, one per host port (ranges expanded).
    pub ports: Vec<PortBinding>,
}

/// The topology the verbs build, applied after each one. Its runtime is
/// its own: the verbs block.
pub struct Controller {
    file: FileTopology,
    /// Endpoints created and not joined yet (cnm's endpoints always join a
    /// sandbox): network and options, by name.
    pending: BTreeMap<String, (String, EndpointOptions)>,
    rt: tokio::runtime::Runtime,
}

impl Controller {
    /// A controller for topology `name`, starting from what was last
    /// applied under that name on this host (nothing, the first time).
    pub fn new(name: &str) -> Result<Controller, Error> {
        crate::naming::valid_identifier(name, crate::store::MAX_TOPOLOGY_NAME)
            .map_err(|e| Error::Usage(format!("topology name '{name}' {e}")))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Setup(format!("cannot start a runtime: {e}")))?;
        let applied = crate::store::Store::system()
            .topology(name)
            .and_then(|s| s.applied())
            .map_err(|e| Error::Setup(e.to_string()))?;
        let file = applied
            .and_then(|r| serde_json::from_value::<FileTopology>(r.topology).ok())
            .unwrap_or_else(|| FileTopology {
                version: 1,
                name: name.to_string(),
                ..Default::default()
            });
        Ok(Controller {
            file,
            pending: BTreeMap::new(),
            rt,
        })
    }

    /// The topology as the verbs left it (print it with serde to get a
    /// file `cnm apply` reads).
    pub fn topology(&self) -> &FileTopology {
        &self.file
    }

    /// libnetwork's `NewNetwork`: a network of `driver` (`bridge`,
    /// `macvlan`, a plugin's name, ...) named `name`.
    pub fn new_network(
        &mut self,
        driver: &str,
        name: &str,
        options: NetworkOptions,
    ) -> Result<(), Error> {
        self.absent("network", name, self.file.networks.contains_key(name))?;
        let mut net = options;
        net.driver = (driver != crate::spec::DEFAULT_DRIVER).then(|| driver.to_string());
        self.change(|f| {
            f.networks.insert(name.to_string(), net);
        })
    }

    /// libnetwork's `Network.CreateEndpoint`: an endpoint on `network`.
    /// It is made when it joins a sandbox ([`Controller::join`]).
    pub fn create_endpoint(
        &mut self,
        network: &str,
        name: &str,
        options: EndpointOptions,
    ) -> Result<(), Error> {
        if !self.file.networks.contains_key(network) {
            return Err(Error::Usage(format!("no network {network}")));
        }
        let exists = self.file.endpoints.contains_key(name) || self.pending.contains_key(name);
        self.absent("endpoint", name, exists)?;
        self.pending
            .insert(name.to_string(), (network.to_string(), options));
        Ok(())
    }

    /// libnetwork's `NewSandbox`: a sandbox (a network namespace of its
    /// own, with hosts and resolv.conf files).
    pub fn new_sandbox(&mut self, name: &str, options: SandboxOptions) -> Result<(), Error> {
        self.absent("sandbox", name, self.file.sandboxes.contains_key(name))?;
        self.change(|f| {
            f.sandboxes.insert(name.to_string(), options);
        })
    }

    /// libnetwork's `Endpoint.Join`: the endpoint's interface goes into the
    /// sandbox, with its address and routes.
    pub fn join(&mut self, endpoint: &str, sandbox: &str) -> Result<(), Error> {
        if !self.file.sandboxes.contains_key(sandbox) {
            return Err(Error::Usage(format!("no sandbox {sandbox}")));
        }
        if let Some(e) = self.file.endpoints.get(endpoint) {
            return Err(Error::Usage(format!(
                "endpoint {endpoint} has joined sandbox {} already",
                e.sandbox
            )));
        }
        let Some((network, o)) = self.pending.get(endpoint).cloned() else {
            return Err(Error::Usage(format!("no endpoint {endpoint}")));
        };
        let joined = FileEndpoint {
            network,
            sandbox: sandbox.to_string(),
            address: o.address,
            mac: o.mac,
            aliases: o.aliases,
            ports: o.ports,
            ..Default::default()
        };
        self.change(|f| {
            f.endpoints.insert(endpoint.to_string(), joined);
        })?;
        self.pending.remove(endpoint);
        Ok(())
    }

    /// libnetwork's `Endpoint.Leave`: the endpoint leaves its sandbox and
    /// is deleted (cnm's endpoints live in a sandbox).
    pub fn leave(&mut self, endpoint: &str) -> Result<(), Error> {
        if !self.file.endpoints.contains_key(endpoint) {
            return Err(Error::Usage(format!(
                "endpoint {endpoint} has joined no sandbox"
            )));
        }
        self.change(|f| {
            f.endpoints.remove(endpoint);
        })
    }

    /// libnetwork's `Sandbox.Delete`: the sandbox, and the endpoints that
    /// joined it.
    pub fn delete_sandbox(&mut self, name: &str) -> Result<(), Error> {
        if !self.file.sandboxes.contains_key(name) {
            return Err(Error::Usage(format!("no sandbox {name}")));
        }
        self.change(|f| {
            f.sandboxes.remove(name);
            f.endpoints.retain(|_, e| e.sandbox != name);
        })
    }

    /// libnetwork's `Network.Delete`: refused while endpoints use it.
    pub fn delete_network(&mut self, name: &str) -> Result<(), Error> {
        if let Some((e, _)) = self.file.endpoints.iter().find(|(_, e)| e.network == name) {
            return Err(Error::Usage(format!(
                "network {name} has active endpoint {e}"
            )));
        }
        self.pending.retain(|_, (n, _)| n != name);
        self.change(|f| {
            f.networks.remove(name);
        })
    }

    /// libnetwork's `Endpoint.Info`/`DriverInfo`: the endpoint's interface,
    /// addresses and port mappings as they are on the host now.
    pub fn endpoint_info(&self, endpoint: &str) -> Result<EndpointInfo, Error> {
        if let Some((network, _)) = self.pending.get(endpoint) {
            return Ok(EndpointInfo {
                name: endpoint.to_string(),
                network: network.clone(),
                sandbox: String::new(),
                interface: String::new(),
                mac: None,
                addresses: Vec::new(),
                ports: Vec::new(),
            });
        }
        let t = self.validated()?;
        let planned = self.rt.block_on(apply::Engine::default().plan(&t))?;
        let t = planned.topology.as_ref().unwrap_or(&t);
        let Some(e) = t.endpoints.get(endpoint) else {
            return Err(Error::Usage(format!("no endpoint {endpoint}")));
        };
        let seen = planned.observed.state.endpoints.get(endpoint);
        let mut ports = Vec::new();
        for p in &e.ports {
            for i in 0..=(p.published.1 - p.published.0) {
                ports.push(PortBinding {
                    protocol: p.protocol.as_str().to_string(),
                    host_ip: p.host_ip,
                    host_port: p.published.0 + i,
                    container_port: p.target.0 + i,
                });
            }
        }
        Ok(EndpointInfo {
            name: endpoint.to_string(),
            network: e.network.clone(),
            sandbox: e.sandbox.clone(),
            interface: seen.map(|s| s.ifname.clone()).unwrap_or_default(),
            mac: seen.and_then(|s| s.mac).map(|m| crate::model::fmt_mac(&m)),
            addresses: seen
                .map(|s| s.addrs.iter().copied().collect())
                .unwrap_or_default(),
            ports,
        })
    }

    /// Remove everything the controller's topology holds on this host, and
    /// its records.
    pub fn destroy(self) -> Result<(), Error> {
        let name = self.file.name.clone();
        self.rt
            .block_on(apply::Engine::default().destroy(&name, &name, |_| Ok(())))?;
        Ok(())
    }

    fn absent(&self, what: &str, name: &str, exists: bool) -> Result<(), Error> {
        if exists {
            return Err(Error::Usage(format!("{what} {name} exists already")));
        }
        Ok(())
    }

    /// The topology as cnm reads it: serialized and parsed again, so every
    /// check of a file applies to what the verbs build.
    fn validated(&self) -> Result<Topology, Error> {
        let text = serde_json::to_string(&self.file)
            .map_err(|e| Error::Setup(format!("cannot serialize the topology: {e}")))?;
        Ok(crate::spec::parse(
            &format!("topology {} (controller)", self.file.name),
            &text,
        )?)
    }

    /// Edit the topology and apply it; on failure the edit is undone.
    fn change(&mut self, edit: impl FnOnce(&mut FileTopology)) -> Result<(), Error> {
        let before = self.file.clone();
        edit(&mut self.file);
        let result = self.validated().and_then(|t| {
            Ok(self
                .rt
                .block_on(apply::Engine::default().apply(&t, |_| Ok(())))?)
        });
        if result.is_err() {
            self.file = before;
        }
        result.map(|_| ())
    }
}
