//! What drivers that call out (a libnetwork plugin, a CNI chain) keep of
//! an endpoint between applies, read and written the same way.

use super::Learned;
use ipnetwork::IpNetwork;
use std::net::IpAddr;

/// An endpoint's `made_with`: a short digest of what its driver is told
/// (a change replaces the endpoint).
pub fn digest(told: &serde_json::Value) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(told.to_string().as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Routes recorded (as JSON) under learned key `key`.
pub fn routes(learned: &Learned, key: &str) -> Vec<(IpNetwork, Option<IpAddr>)> {
    learned
        .get(key)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}
