//! Values drivers learn during apply (Terraform's "known after apply").
//! A driver returns them from `create_endpoint` and they are recorded at
//! once; when a crash falls between the call and the record, the next plan
//! reads them back from the kernel instead: the endpoint's interface
//! carries cnm's mark, so what the kernel shows of it is cnm's. Only the
//! fields the engine can read itself are adopted that way (`ifname`,
//! `mac`); a driver's other values wait for its next create.

use crate::drivers::Learned;
use crate::model::{fmt_mac, EndpointRes, Observed, State};
use crate::plan::{Op, Plan, Resource};
use std::collections::BTreeMap;

/// The engine-readable fields a learned value may name.
pub const IFNAME: &str = "ifname";
/// The field name of an endpoint's MAC.
pub const MAC: &str = "mac";

/// Fill what `learned` lacks for endpoints whose desired state still has
/// unknown fields, from their observed interfaces. Returns whether any
/// value was added (the desired state must then be built again).
pub fn adopt(desired: &State, obs: &Observed, learned: &mut BTreeMap<String, Learned>) -> bool {
    let mut added = false;
    for d in desired.endpoints.values().filter(|d| !d.unknown.is_empty()) {
        let Some(o) = obs
            .state
            .endpoints
            .get(&d.endpoint)
            .filter(|o| same_kind(o, d) && !o.ifname.is_empty())
        else {
            continue;
        };
        let values = learned.entry(d.endpoint.clone()).or_default();
        for field in &d.unknown {
            let seen = match field.as_str() {
                IFNAME => Some(o.ifname.clone()),
                MAC => o.mac.map(|m| fmt_mac(&m)),
                _ => None,
            };
            if let Some(v) = seen {
                if !values.contains_key(field) {
                    values.insert(field.clone(), v);
                    added = true;
                }
            }
        }
    }
    learned.retain(|_, v| !v.is_empty());
    added
}

/// Whether the observed interface is the kind the driver would make
/// (same sandbox, link kind, settings, host end or none): another kind is
/// about to be replaced and tells nothing about what the driver will learn.
fn same_kind(o: &EndpointRes, d: &EndpointRes) -> bool {
    o.netns == d.netns
        && o.kind == d.kind
        && o.settings == d.settings
        && o.host.is_some() == d.host.is_some()
}

/// Endpoints the plan creates (or replaces) get new values from their
/// driver: what was learned before is shown, and verified, as unknown.
pub fn relearned(plan: &mut Plan, learned: &BTreeMap<String, Learned>) {
    for a in plan
        .actions
        .iter_mut()
        .filter(|a| matches!(a.op, Op::Create | Op::Replace))
    {
        let Resource::Endpoint(e) = &mut a.resource else {
            continue;
        };
        let Some(values) = learned.get(&e.endpoint) else {
            continue;
        };
        for field in [IFNAME, MAC] {
            if values.contains_key(field) && !e.unknown.iter().any(|u| u == field) {
                e.unknown.push(field.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EndpointRes;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    fn ep(ifname: &str, mac: Option<[u8; 6]>, unknown: &[&str]) -> EndpointRes {
        EndpointRes {
            endpoint: "e".into(),
            network: "n".into(),
            sandbox: "s".into(),
            netns: "t-s".into(),
            kind: "veth".into(),
            ifname: ifname.into(),
            mac,
            mtu: 1500,
            addrs: Default::default(),
            up: true,
            host: None,
            settings: Vec::new(),
            unknown: unknown.iter().map(|s| s.to_string()).collect(),
            made_with: String::new(),
            driver: "x".into(),
        }
    }

    #[test]
    fn unknown_fields_are_read_back_once() -> TestResult {
        let mut desired = State::default();
        desired
            .endpoints
            .insert("e".into(), ep("eth0", None, &[IFNAME, MAC]));
        let mut obs = Observed::default();
        let mac = [2, 0, 0, 0, 0, 7];
        obs.state
            .endpoints
            .insert("e".into(), ep("ext1a2b", Some(mac), &[]));
        let mut learned = BTreeMap::new();
        assert!(adopt(&desired, &obs, &mut learned));
        assert_eq!(learned["e"][IFNAME], "ext1a2b");
        assert_eq!(learned["e"][MAC], "02:00:00:00:00:07");
        // Recorded values win over what the kernel shows later.
        obs.state
            .endpoints
            .get_mut("e")
            .ok_or("endpoint e is not observed")?
            .ifname = "other".into();
        assert!(!adopt(&desired, &obs, &mut learned));
        assert_eq!(learned["e"][IFNAME], "ext1a2b");
        Ok(())
    }

    #[test]
    fn nothing_is_adopted_from_another_sandbox_or_without_unknowns() -> TestResult {
        let mut desired = State::default();
        desired
            .endpoints
            .insert("e".into(), ep("eth0", None, &[IFNAME]));
        let mut obs = Observed::default();
        let mut moved = ep("ext1", None, &[]);
        moved.netns = "t-other".into();
        obs.state.endpoints.insert("e".into(), moved);
        let mut learned = BTreeMap::new();
        assert!(!adopt(&desired, &obs, &mut learned));
        assert!(learned.is_empty());
        desired
            .endpoints
            .get_mut("e")
            .ok_or("endpoint e is not desired")?
            .unknown
            .clear();
        obs.state
            .endpoints
            .get_mut("e")
            .ok_or("endpoint e is not observed")?
            .netns = "t-s".into();
        assert!(!adopt(&desired, &obs, &mut learned));
        Ok(())
    }

    #[test]
    fn another_kind_of_interface_is_not_read_back() {
        let mut desired = State::default();
        desired
            .endpoints
            .insert("e".into(), ep("eth0", None, &[IFNAME, MAC]));
        let mut obs = Observed::default();
        // A bridge's veth (with a host end) that the plan will replace.
        let mut veth = ep("eth0", Some([2, 0, 0, 0, 0, 8]), &[]);
        veth.host = Some(crate::model::HostEnd {
            ifname: "ve-1".into(),
            master: "br".into(),
            hairpin: true,
        });
        obs.state.endpoints.insert("e".into(), veth);
        let mut learned = BTreeMap::new();
        assert!(!adopt(&desired, &obs, &mut learned));
        assert!(learned.is_empty());
    }

    #[test]
    fn created_and_replaced_endpoints_learn_again() {
        let learned = BTreeMap::from([(
            "e".to_string(),
            Learned::from([(IFNAME.to_string(), "ext1".to_string())]),
        )]);
        let action = |op| crate::plan::Action {
            op,
            resource: Resource::Endpoint(ep("ext1", None, &[])),
            before: None,
            changes: Vec::new(),
            reason: None,
        };
        let mut plan = Plan {
            format_version: 2,
            topology: "t".into(),
            actions: vec![action(Op::Replace), action(Op::Update)],
            notes: Vec::new(),
        };
        relearned(&mut plan, &learned);
        let unknown = |i: usize| match &plan.actions[i].resource {
            Resource::Endpoint(e) => e.unknown.clone(),
            _ => Vec::new(),
        };
        assert_eq!(unknown(0), vec![IFNAME.to_string()]);
        assert!(unknown(1).is_empty());
    }
}
