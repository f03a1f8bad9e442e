//! Networks whose addresses come from an IPAM plugin (`ipam: { driver }`):
//! the pool, gateway and endpoint addresses are objects asked of the
//! plugin (in that order, each waiting on the answer before it), and what
//! the plugin answered — recorded — is the network's addressing. Until an
//! answer is recorded, what depends on it is known after apply.

use super::EndpointAddr;
use crate::drivers::{Addressing, Gateway, Registry};
use crate::model::{Observed, PluginCall, PluginRes};
use crate::plan::KNOWN_AFTER_APPLY;
use crate::topology::{Loc, Network, Topology};
use ipnetwork::IpNetwork;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Docker's option naming the gateway, in pool data and address requests.
const GATEWAY_OPTION: &str = "com.docker.network.gateway";

/// What the plugins decided for the file's IPAM-plugin networks.
#[derive(Default)]
pub(super) struct Resolved {
    pub subnets: BTreeMap<String, Addressing>,
    pub addrs: BTreeMap<String, EndpointAddr>,
    /// Endpoints whose addresses are not known yet.
    pub pending: BTreeSet<String>,
    pub objects: BTreeMap<String, PluginRes>,
}

pub(super) fn resolve(
    reg: &Registry,
    t: &Topology,
    obs: &Observed,
) -> Result<Resolved, (Loc, String)> {
    let mut out = Resolved::default();
    for net in t.networks.values() {
        let Some(ipam) = &net.ipam else {
            continue;
        };
        let space = reg
            .plugin(&ipam.driver)
            .flatten()
            .and_then(|p| p.address_space.clone())
            .or_else(|| {
                obs.state
                    .plugins
                    .get(&format!("pool {} v4", net.name))
                    .and_then(|p| p.request_str("AddressSpace").map(str::to_string))
            })
            .unwrap_or_else(|| "local".into());
        let mut ask = Asker {
            plugin: &ipam.driver,
            net,
            t,
            obs,
            out: &mut out,
        };
        let v4 = ask
            .family(
                t,
                &space,
                false,
                net.subnet.map(|s| s.to_string()),
                net.ip_range.map(|r| r.to_string()),
                net.gateway.map(|g| g.to_string()),
                |e| e.address.map(|a| a.to_string()),
            )
            .map_err(|m| (ipam.loc, m))?;
        let v6 = net.ipv6.as_ref().map(|c| {
            ask.family(
                t,
                &space,
                true,
                Some(c.subnet.to_string()),
                c.ip_range.map(|r| r.to_string()),
                c.gateway.map(|g| g.to_string()),
                |e| e.ipv6_address.map(|a| a.to_string()),
            )
        });
        let v6 = v6.transpose().map_err(|m| (ipam.loc, m))?;
        let pending = v4.pending || v6.as_ref().is_some_and(|f| f.pending);
        let gw6 = v6.as_ref().and_then(|f| f.gateway);
        out.subnets.insert(
            net.name.clone(),
            Addressing {
                gateway_v4: v4.gateway.and_then(|g| match g {
                    IpNetwork::V4(g) => Some(g),
                    _ => None,
                }),
                gateway_v6: gw6.and_then(|g| match g {
                    IpNetwork::V6(g) => Some(g),
                    _ => None,
                }),
                pending,
                address_space: Some(space),
            },
        );
    }
    Ok(out)
}

/// What one family's pool request settled: the family's name in keys,
/// the pool (when the plugin gave one) and its id.
struct Asked<'a> {
    fam: &'a str,
    v6: bool,
    cidr: Option<IpNetwork>,
    id: String,
}

/// One family's outcome.
struct Family {
    gateway: Option<IpNetwork>,
    pending: bool,
}

struct Asker<'a> {
    plugin: &'a str,
    net: &'a Network,
    t: &'a Topology,
    obs: &'a Observed,
    out: &'a mut Resolved,
}

impl Asker<'_> {
    /// The recorded answer to `obj`, when it was asked exactly so.
    fn answer(&self, obj: &PluginRes) -> Option<PluginRes> {
        self.obs
            .state
            .plugins
            .get(&obj.key)
            .filter(|o| !o.pending && o.plugin == obj.plugin && o.request == obj.request)
            .cloned()
    }

    fn object(
        &mut self,
        key: String,
        call: PluginCall,
        endpoint: &str,
        request: Value,
    ) -> PluginRes {
        let obj = PluginRes {
            key: key.clone(),
            call,
            plugin: self.plugin.to_string(),
            network: self.net.name.clone(),
            endpoint: endpoint.to_string(),
            request,
            returned: Value::Null,
            pending: false,
        };
        self.out.objects.insert(key, obj.clone());
        obj
    }

    /// Ask for one family: the pool, the gateway, each endpoint's address
    /// (what was asked exactly so before is taken from the records).
    #[allow(clippy::too_many_arguments)]
    fn family(
        &mut self,
        t: &Topology,
        space: &str,
        v6: bool,
        pool: Option<String>,
        sub_pool: Option<String>,
        gateway: Option<String>,
        address_of: impl Fn(&crate::topology::Endpoint) -> Option<String>,
    ) -> Result<Family, String> {
        let fam = if v6 { "v6" } else { "v4" };
        let net = self.net;
        let options: BTreeMap<&String, &String> = net
            .ipam
            .as_ref()
            .map(|i| i.options.iter().collect())
            .unwrap_or_default();
        let pool_obj = self.object(
            format!("pool {} {fam}", net.name),
            PluginCall::Pool,
            "",
            json!({
                "AddressSpace": space,
                "Pool": pool.unwrap_or_default(),
                "SubPool": sub_pool.unwrap_or_default(),
                "Options": options,
                "V6": v6,
            }),
        );
        let pool = self.answer(&pool_obj);
        // The plugin's word is checked like a subnet in the file before
        // anything of the host's gets it.
        let cidr = match pool.as_ref().and_then(|p| p.returned_str("Pool")) {
            Some(p) => Some(self.check_pool(p, v6)?),
            None => None,
        };
        let pool_id = pool
            .as_ref()
            .and_then(|p| p.returned_str("PoolID"))
            .map(str::to_string);
        let asked = Asked {
            fam,
            v6,
            cidr,
            id: pool_id.clone().unwrap_or_else(|| KNOWN_AFTER_APPLY.into()),
        };
        let (gw, gw_pending) = match net.caps.gateway {
            Gateway::None | Gateway::Device => (None, false),
            _ => self.gateway(&asked, pool.as_ref(), gateway)?,
        };
        self.addresses(t, &asked, address_of)?;
        Ok(Family {
            gateway: gw,
            pending: pool_id.is_none() || gw_pending,
        })
    }

    /// The gateway: given in the pool's data, or asked for. Whether it is
    /// still to be asked.
    fn gateway(
        &mut self,
        asked: &Asked<'_>,
        pool: Option<&PluginRes>,
        gateway: Option<String>,
    ) -> Result<(Option<IpNetwork>, bool), String> {
        let in_data = pool.and_then(|p| {
            p.returned
                .get("Data")
                .and_then(|d| d.get(GATEWAY_OPTION))
                .and_then(Value::as_str)
                .and_then(|g| g.parse::<IpNetwork>().ok())
        });
        if let Some(g) = in_data {
            return Ok((Some(self.inside(asked, "gateway", g)?), false));
        }
        let obj = self.object(
            format!("gateway {} {}", self.net.name, asked.fam),
            PluginCall::Gateway,
            "",
            json!({
                "PoolID": asked.id,
                "Address": gateway.unwrap_or_default(),
                "Options": { "RequestAddressType": GATEWAY_OPTION },
            }),
        );
        let got = self
            .answer(&obj)
            .and_then(|o| o.returned_str("Address").map(str::to_string))
            .and_then(|a| a.parse::<IpNetwork>().ok());
        let pending = got.is_none();
        let gw = got.map(|g| self.inside(asked, "gateway", g)).transpose()?;
        Ok((gw, pending))
    }

    /// Each endpoint's address of this family; those not known yet are
    /// pending.
    fn addresses(
        &mut self,
        t: &Topology,
        asked: &Asked<'_>,
        address_of: impl Fn(&crate::topology::Endpoint) -> Option<String>,
    ) -> Result<(), String> {
        for e in t.endpoints_on_network(&self.net.name) {
            let obj = self.object(
                format!("address {} {}", e.name, asked.fam),
                PluginCall::Address,
                &e.name,
                json!({
                    "PoolID": asked.id,
                    "Address": address_of(e).unwrap_or_default(),
                    "Options": {},
                }),
            );
            let got = self
                .answer(&obj)
                .and_then(|o| o.returned_str("Address").map(str::to_string))
                .and_then(|a| a.parse::<IpNetwork>().ok())
                .map(|a| self.inside(asked, &format!("endpoint {} the address", e.name), a))
                .transpose()?;
            let slot = self.out.addrs.entry(e.name.clone()).or_default();
            match got {
                Some(IpNetwork::V4(a)) if !asked.v6 => slot.v4 = Some(a),
                Some(IpNetwork::V6(a)) if asked.v6 => slot.v6 = Some(a),
                _ => {
                    self.out.pending.insert(e.name.clone());
                }
            }
        }
        Ok(())
    }

    /// `a`, when it is a usable address of the pool the plugin gave.
    fn inside(&self, asked: &Asked<'_>, what: &str, a: IpNetwork) -> Result<IpNetwork, String> {
        match asked.cidr {
            Some(c) if usable(c, a) => Ok(a),
            Some(c) => Err(format!(
                "network {}: IPAM plugin {} gave {what} {a}, which is not a usable address of its pool {c}",
                self.net.name, self.plugin
            )),
            None => Ok(a),
        }
    }

    /// A pool the plugin gave: of the family asked, not reserved, not
    /// routed by the host (when cnm holds its gateway), not overlapping
    /// another network of the file.
    fn check_pool(&self, pool: &str, v6: bool) -> Result<IpNetwork, String> {
        let net = self.net;
        let bad = |why: String| {
            format!(
                "network {}: IPAM plugin {} gave pool {pool}, {why}; cnm does not use it (`cnm destroy` gives it back)",
                net.name, self.plugin
            )
        };
        let p: IpNetwork = pool
            .parse()
            .map_err(|_| bad("which is not a subnet".into()))?;
        let (min, max) = if v6 { (32, 126) } else { (8, 30) };
        if p.is_ipv6() != v6 || !(min..=max).contains(&p.prefix()) {
            return Err(bad(format!(
                "which is not an IPv{} subnet of /{min} to /{max}",
                if v6 { 6 } else { 4 }
            )));
        }
        if let Some(why) = crate::spec::reserved(p) {
            return Err(bad(format!("which {why}")));
        }
        // Where cnm puts the gateway on a host link, the host must not
        // route the pool already. A gateway outside cnm's objects (a
        // plugin's own bridge) routes it by design.
        let on_host = net.caps.gateway == Gateway::OnHost;
        if let Some(r) = self
            .obs
            .host
            .routed
            .iter()
            .find(|r| on_host && crate::ipam::overlaps(r, &p))
        {
            return Err(bad(format!("which overlaps {r}, routed by the host")));
        }
        let others = self
            .t
            .networks
            .values()
            .filter(|n| n.name != net.name)
            .flat_map(|n| {
                n.subnet
                    .map(IpNetwork::V4)
                    .into_iter()
                    .chain(n.ipv6.as_ref().map(|c| IpNetwork::V6(c.subnet)))
                    .map(move |s| (n.name.clone(), s))
            });
        for (name, s) in others {
            if crate::ipam::overlaps(&s, &p) {
                return Err(bad(format!("which overlaps network {name} ({s})")));
            }
        }
        Ok(p)
    }
}

/// An address of `pool` a host may hold: inside, with the pool's prefix,
/// not its network (nor, for IPv4, broadcast) address.
fn usable(pool: IpNetwork, a: IpNetwork) -> bool {
    match (pool, a) {
        (IpNetwork::V4(p), IpNetwork::V4(a)) => {
            a.prefix() == p.prefix()
                && p.contains(a.ip())
                && a.ip() != p.network()
                && a.ip() != p.broadcast()
        }
        (IpNetwork::V6(p), IpNetwork::V6(a)) => {
            a.prefix() == p.prefix() && p.contains(a.ip()) && a.ip() != p.network()
        }
        _ => false,
    }
}
