//! Request bodies of the endpoint calls, as Docker builds them.

use crate::topology::{Endpoint, PortMapping};
use serde_json::{json, Value};

/// Docker's protocol numbers in port maps.
fn proto(p: &PortMapping) -> u8 {
    match p.protocol.as_str() {
        "udp" => 17,
        "sctp" => 132,
        _ => 6,
    }
}

/// `Options` of CreateEndpoint and ProgramExternalConnectivity: the
/// published ports (`com.docker.network.portmap`, one entry per port of a
/// range) and the exposed ones. Also whether there are any.
pub(super) fn endpoint_options(e: &Endpoint) -> (Value, bool) {
    let mut portmap = Vec::new();
    let mut exposed = Vec::new();
    for p in &e.ports {
        let host_ip = p.host_ip.map(|i| i.to_string()).unwrap_or_default();
        for i in 0..=(p.target.1 - p.target.0) {
            let port = p.target.0 + i;
            let host_port = p.published.0 + i;
            portmap.push(json!({
                "Proto": proto(p),
                "IP": "",
                "Port": port,
                "HostIP": host_ip,
                "HostPort": host_port,
                "HostPortEnd": host_port,
            }));
            exposed.push(json!({ "Proto": proto(p), "Port": port }));
        }
    }
    let any = !portmap.is_empty();
    let mut options = json!({});
    if any {
        options["com.docker.network.portmap"] = Value::Array(portmap);
        options["com.docker.network.endpoint.exposedports"] = Value::Array(exposed);
    }
    (options, any)
}
