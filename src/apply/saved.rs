//! Saved plans (Terraform's `plan -out`): `cnm plan FILE --out PLANFILE`
//! writes the plan with the topology it is for and a fingerprint of what
//! it was computed from; `cnm apply PLANFILE` runs exactly that plan, or
//! refuses it as stale when anything the fingerprint covers has changed
//! since, even objects the plan does not touch; `cnm show PLANFILE`
//! prints it for review. A reviewer approves the very plan that runs.
//!
//! The fingerprint has three parts, so that a refusal says what moved:
//! - `owned`: everything the topology owns, as observed (links,
//!   addresses, routes, namespaces with their identities, files, the
//!   firewall, the resolver);
//! - `records`: the topology's records (applied, learned values, plugin
//!   objects, namespaces, files, the journal, the firewall's digest);
//! - `host`: the host facts the plan checked (links and their marks,
//!   routes, names under /run/netns, addresses, nameservers, the `nft`
//!   version, borrowed namespaces) and the claims of every other topology.
//!
//! Each is a SHA-256 of the value's `Debug` rendering: a plan file is
//! only ever applied by the cnm version that wrote it (checked), so that
//! rendering is stable where it counts.

use super::{ApplyError, Planned};
use crate::spec::file::FileTopology;
use crate::spec::Topology;
use crate::store::{Store, TopologyStore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The plan file format's version (`"cnm_plan": 1` at its top level).
pub const PLAN_FILE_VERSION: u32 = 1;

/// A saved plan, as written to PLANFILE (JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    /// [`PLAN_FILE_VERSION`]; its presence marks a plan file.
    pub cnm_plan: u32,
    /// The cnm that wrote it (only that version applies it).
    pub cnm_version: String,
    /// When it was planned (seconds since the epoch).
    pub created: u64,
    /// The file the topology came from, as given; `None` for a record
    /// (`--topology`) or standard input.
    pub source: Option<String>,
    /// The canonical path recorded as the topology's source when applied.
    pub source_path: Option<String>,
    /// Which of the file's hosts this machine is.
    pub host: Option<String>,
    /// The topology planned, in the file's form.
    pub topology: serde_json::Value,
    /// What the plan was computed from.
    pub fingerprint: Fingerprint,
    /// The plan, as `cnm plan -o json` prints it.
    pub plan: serde_json::Value,
    /// The plan as `cnm plan` prints it (without colour).
    pub text: String,
}

/// See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// What the topology owns, as observed.
    pub owned: String,
    /// The topology's records.
    pub records: String,
    /// The host facts the plan checked, and other topologies' claims.
    pub host: String,
}

impl SavedPlan {
    /// The plan `p` of topology `t`, with what it was computed from.
    pub fn of(t: &Topology, p: &Planned, label: &str, source: Option<String>) -> SavedPlan {
        let planned = p.topology.as_ref().unwrap_or(t);
        let store = Store::system().topology(&t.name);
        SavedPlan {
            cnm_plan: PLAN_FILE_VERSION,
            cnm_version: env!("CARGO_PKG_VERSION").to_string(),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            source,
            source_path: t.source.clone(),
            host: planned.this_host.clone(),
            topology: serde_json::to_value(FileTopology::from_spec(planned)).unwrap_or_default(),
            fingerprint: match store {
                Ok(s) => fingerprint(p, &s),
                Err(_) => Fingerprint::default_unknown(),
            },
            plan: serde_json::from_str(&p.plan.to_json()).unwrap_or_default(),
            text: p.plan.render_text(label, false),
        }
    }

    /// Read a plan file from its bytes; `None` when they are not one (a
    /// topology file, then): JSON whose top level has `cnm_plan`.
    pub fn detect(bytes: &[u8]) -> Option<Result<SavedPlan, String>> {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace())?;
        if *first != b'{' {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        let version = v.get("cnm_plan")?;
        if version.as_u64() != Some(u64::from(PLAN_FILE_VERSION)) {
            return Some(Err(format!(
                "a plan file of format {version}; this cnm reads format {PLAN_FILE_VERSION}"
            )));
        }
        Some(serde_json::from_value(v).map_err(|e| format!("not a plan file cnm can read: {e}")))
    }

    /// The topology the plan is for, as it was planned.
    pub fn topology(&self, label: &str) -> Result<Topology, ApplyError> {
        let text = serde_json::to_string(&self.topology).unwrap_or_default();
        let mut t = crate::spec::parse(label, &text).map_err(|e| {
            ApplyError::Stale(format!("{label}: its topology does not validate: {e}"))
        })?;
        t.this_host = self.host.clone().filter(|h| t.hosts.contains_key(h));
        t.source = self.source_path.clone();
        Ok(t)
    }

    /// Whether the plan computed now, from what is observed now, is the
    /// saved one: an error naming what changed (the word `stale` in one
    /// line) when it is not.
    pub fn check(&self, label: &str, p: &Planned, store: &TopologyStore) -> Result<(), ApplyError> {
        let stale = |why: &str| {
            Err(ApplyError::Stale(format!(
                "the saved plan {label} is stale: {why}; run cnm plan --out again"
            )))
        };
        if self.cnm_version != env!("CARGO_PKG_VERSION") {
            return stale(&format!(
                "it was saved by cnm {} and this is cnm {}",
                self.cnm_version,
                env!("CARGO_PKG_VERSION")
            ));
        }
        let now = fingerprint(p, store);
        if now.owned != self.fingerprint.owned {
            return stale("what the topology owns has changed since it was planned");
        }
        if now.records != self.fingerprint.records {
            return stale("the topology's records have changed since it was planned");
        }
        if now.host != self.fingerprint.host {
            return stale("the host has changed since it was planned (links, routes, namespaces or what other topologies hold)");
        }
        let plan: serde_json::Value = serde_json::from_str(&p.plan.to_json()).unwrap_or_default();
        if plan != self.plan {
            return stale("the plan computed now differs from the saved one");
        }
        Ok(())
    }
}

impl Fingerprint {
    /// A fingerprint no observation matches (the records could not be
    /// opened): the plan can never be applied.
    fn default_unknown() -> Fingerprint {
        Fingerprint {
            owned: "unknown".into(),
            records: "unknown".into(),
            host: "unknown".into(),
        }
    }
}

/// The fingerprint of plan `p` and the records of `store`'s topology.
pub fn fingerprint(p: &Planned, store: &TopologyStore) -> Fingerprint {
    let records = (
        store.applied().ok(),
        store.learned().ok(),
        store.plugin_objects().ok(),
        store.namespaces().ok(),
        store.files().ok(),
        store.journal().ok(),
        store.nft_digest().ok(),
    );
    let system = Store::system();
    let others: Vec<_> = system
        .topologies()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n != store.name())
        .map(|n| {
            let claims = system
                .topology(&n)
                .ok()
                .and_then(|s| s.applied().ok().flatten())
                .map(|r| r.claims);
            (n, claims)
        })
        .collect();
    Fingerprint {
        owned: digest(&p.observed.state),
        records: digest(&records),
        host: digest(&(&p.observed.host, others)),
    }
}

/// SHA-256 (hex) of a value's `Debug` rendering, streamed into the hash.
fn digest(v: &impl std::fmt::Debug) -> String {
    struct Hasher(Sha256);
    impl std::fmt::Write for Hasher {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.update(s.as_bytes());
            Ok(())
        }
    }
    let mut h = Hasher(Sha256::new());
    let _ = std::fmt::write(&mut h, format_args!("{v:?}"));
    h.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// `cnm apply PLANFILE`: plan again under the lock, refuse the saved plan
/// as stale unless the new plan and its fingerprint are the saved ones,
/// then run it (`show` sees it first, as for any apply).
pub async fn converge_saved(
    engine: &super::Engine,
    saved: &SavedPlan,
    label: &str,
    show: impl FnOnce(&crate::plan::Plan) -> Result<(), String>,
) -> Result<crate::plan::Plan, ApplyError> {
    let t = saved.topology(label)?;
    let check = |p: &Planned, store: &TopologyStore| saved.check(label, p, store);
    engine.apply_checked(&t, check, show).await
}
