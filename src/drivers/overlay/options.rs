//! The overlay driver's options: `vni`, else one derived from the
//! topology's and network's names (so every host derives the same one).

use crate::drivers::{DriverOptions, NetworkInput, Options};
use crate::topology::{Diagnostics, Network};
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayOptions {
    pub vni: u32,
    /// `options.vni` was written (not derived).
    pub explicit: bool,
}

impl DriverOptions for OverlayOptions {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn to_file(&self) -> BTreeMap<String, serde_json::Value> {
        let mut m = BTreeMap::new();
        if self.explicit {
            m.insert("vni".into(), self.vni.into());
        }
        m
    }
}

/// VXLAN network identifier of an overlay network without `options.vni`:
/// a hash of topology and network name into 4096..2^24-1, so every host
/// derives the same one and small hand-picked VNIs stay free.
pub fn derived_vni(topology: &str, network: &str) -> u32 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("cnm-vni\0{topology}\0{network}").as_bytes());
    let n = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    const LOW: u32 = 4096;
    const HIGH: u32 = (1 << 24) - 1;
    LOW + n % (HIGH - LOW + 1)
}

pub fn check(net: &NetworkInput<'_>, c: &mut Diagnostics) -> Options {
    let name = net.name;
    let mut o = OverlayOptions {
        vni: derived_vni(net.topology, name),
        explicit: false,
    };
    for (key, v) in &net.raw.options {
        match key.as_str() {
            "vni" => match v.value.as_u64() {
                Some(x) if (1..(1 << 24)).contains(&x) => {
                    o.vni = x as u32;
                    o.explicit = true;
                }
                _ => c.err(
                    v,
                    format!("network {name}: options.vni must be an integer in 1..16777215"),
                ),
            },
            crate::drivers::DOCKER_MTU_OPTION => {}
            other => c.err(
                v,
                format!("network {name}: unknown overlay option '{other}' (known: vni)"),
            ),
        }
    }
    Options(Arc::new(o))
}

/// Two overlay networks cannot share a VNI (the kernel refuses a second
/// VXLAN device with the same VNI and port).
pub fn check_vnis(nets: &[&Network], c: &mut Diagnostics) {
    let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
    for n in nets {
        let Some(o) = n.options.get::<OverlayOptions>() else {
            continue;
        };
        if let Some(first) = seen.insert(o.vni, &n.name) {
            c.err(
                n.loc,
                format!(
                    "network {}: vni {} is also the vni of network {first}; set options.vni",
                    n.name, o.vni
                ),
            );
        }
    }
}
