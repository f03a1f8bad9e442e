//! Pieces of the topology file's JSON Schema: value types the engine's
//! keys and the drivers' options share (`spec::schema` assembles them).

use serde_json::{json, Value};

/// A name of a topology, network, sandbox or endpoint (see
/// [`crate::spec::valid_identifier`]).
pub fn identifier(max: usize) -> Value {
    json!({
        "type": "string",
        "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        "not": { "pattern": "\\.\\." },
        "maxLength": max
    })
}

/// Schema of an IPv4 address string (`10.0.0.1`).
pub fn ipv4() -> Value {
    json!({ "type": "string", "format": "ipv4" })
}

/// Schema of an IPv6 address string (`fd00::1`).
pub fn ipv6() -> Value {
    json!({ "type": "string", "format": "ipv6" })
}

/// Schema of an IPv4 or IPv6 address string.
pub fn ip() -> Value {
    json!({ "anyOf": [ipv4(), ipv6()] })
}

pub fn cidr4() -> Value {
    json!({ "type": "string", "pattern": "^[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}$" })
}

pub fn cidr6() -> Value {
    json!({ "type": "string", "pattern": "^[0-9A-Fa-f:.]+/[0-9]{1,3}$" })
}

/// A Linux interface name.
pub fn ifname() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 15, "pattern": "^[^/:\\s]+$" })
}

/// A boolean as YAML writes it, or as Docker's `-o key=false` does.
pub fn boolish() -> Value {
    json!({ "anyOf": [{ "type": "boolean" }, { "enum": ["true", "false"] }] })
}

/// `com.docker.network.driver.mtu`, accepted by every driver that takes
/// options: a number, or Docker's string of digits.
pub fn docker_mtu() -> Value {
    json!({
        "description": "Docker's name for mtu:",
        "anyOf": [
            { "type": "integer", "minimum": 68, "maximum": 65535 },
            { "type": "string", "pattern": "^[0-9]+$" }
        ]
    })
}

/// Options of a driver that takes none.
pub fn no_options() -> Value {
    json!({ "type": "object", "maxProperties": 0 })
}

pub fn map_of(name_max: usize, value: Value, max: usize) -> Value {
    json!({
        "type": "object",
        "propertyNames": identifier(name_max),
        "additionalProperties": value,
        "maxProperties": max
    })
}

pub fn strings(max_items: usize) -> Value {
    json!({ "type": "array", "items": { "type": "string" }, "maxItems": max_items })
}
