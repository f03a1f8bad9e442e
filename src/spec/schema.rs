//! The topology file's JSON Schema (draft 2020-12), for editors (the
//! examples carry a yaml-language-server modeline) and other tools. Every
//! key, value type and enum; each driver describes its own `options`.
//! `cnm schema` prints it; `schema/topology.schema.json` is the committed
//! copy, and a test keeps the two equal. Checks the schema cannot express
//! (overlaps, references between objects, what the host has) are cnm's.
//!
//! Written by hand, not derived (schemars): its limits, patterns, formats
//! and per-driver `options` are most of it, and the file's types carry
//! spans. What a derive would guarantee is tested instead: for every
//! object of the file, the keys here are exactly the fields serde reads
//! (`the_schema_lists_every_key_the_parser_reads`).

use crate::drivers::Registry;
use crate::topology::schema::*;
use serde_json::{json, Value};

/// The schema's `$id` (a name, not a place: the file is in the repository).
pub const ID: &str = "urn:cnm:schema:topology:1";

/// The schema of a topology file, with `reg`'s drivers.
pub fn schema(reg: &Registry) -> Value {
    use crate::spec::limits;
    let obj = crate::store::MAX_OBJECT_NAME;
    let (network, sandbox, endpoint) = (network(reg), sandbox(), endpoint());
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": ID,
        "title": "cnm topology",
        "description": "A cnm topology file (version 1): networks, sandboxes and the endpoints joining them.",
        "type": "object",
        "additionalProperties": false,
        "required": ["version", "name"],
        "properties": {
            "version": { "const": 1 },
            "name": identifier(crate::store::MAX_TOPOLOGY_NAME),
            "hosts": map_of(obj, json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["address"],
                "properties": { "address": ip() }
            }), limits::HOSTS),
            "networks": map_of(obj, network, limits::NETWORKS),
            "sandboxes": map_of(obj, sandbox, limits::SANDBOXES),
            "endpoints": map_of(obj, endpoint, limits::ENDPOINTS),
            "dns": {
                "type": "object",
                "additionalProperties": false,
                "properties": { "embedded": { "type": "boolean" } }
            }
        }
    })
}

/// Each driver's options, when the network names it (`bridge` when it
/// names none); any other driver is a plugin's, with its own options.
fn per_driver(reg: &Registry) -> Vec<Value> {
    let builtin: Vec<&str> = reg.names();
    let mut per_driver = Vec::new();
    for name in &builtin {
        let Some(d) = reg.get(name) else { continue };
        let names_it = if *name == crate::spec::DEFAULT_DRIVER {
            json!({ "anyOf": [
                { "not": { "required": ["driver"] } },
                { "properties": { "driver": { "const": name } }, "required": ["driver"] }
            ]})
        } else {
            json!({ "properties": { "driver": { "const": name } }, "required": ["driver"] })
        };
        let options = d.options_schema();
        // Options with a required key (macvlan's parent) are required.
        let required: &[&str] = if options.get("required").is_some() {
            &["options"]
        } else {
            &[]
        };
        per_driver.push(json!({
            "if": names_it,
            "then": { "required": required, "properties": { "options": options } }
        }));
    }
    per_driver
}

/// A published port: Docker's short syntax, a port alone, or the long form.
fn port() -> Value {
    json!({
        "description": "Docker's short syntax [HOST_IP:][HOST_PORT:]PORT[/PROTOCOL] (no host port: cnm chooses one from the ephemeral range), a container port alone, or the long form",
        "anyOf": [
            { "type": "string", "pattern": "^(\\[[0-9A-Fa-f:.]+\\]:|[0-9.]+:)?([0-9]{0,5}(-[0-9]{1,5})?:)?[0-9]{1,5}(-[0-9]{1,5})?(/(tcp|udp|sctp))?$" },
            { "type": "integer", "minimum": 1, "maximum": 65535 },
            {
                "type": "object",
                "additionalProperties": false,
                "required": ["target"],
                "properties": {
                    "target": { "type": ["integer", "string"], "description": "the container port (or range)" },
                    "published": { "type": ["integer", "string"], "description": "the host port (or range); absent: chosen by cnm" },
                    "protocol": { "enum": ["tcp", "udp", "sctp"] },
                    "host_ip": ip()
                }
            }
        ]
    })
}

/// A network: its driver, addressing, and its driver's options.
fn network(reg: &Registry) -> Value {
    let obj = crate::store::MAX_OBJECT_NAME;
    let builtin: Vec<&str> = reg.names();
    let per_driver = per_driver(reg);
    json!({
        "type": ["object", "null"],
        "additionalProperties": false,
        "properties": {
            "driver": {
                "description": format!("cnm's drivers: {}; any other name is a libnetwork remote driver plugin", builtin.join(", ")),
                "anyOf": [{ "enum": builtin }, identifier(obj)]
            },
            "subnet": cidr4(),
            "gateway": ipv4(),
            "ip_range": cidr4(),
            "ipv4": { "type": "boolean", "description": "false: an IPv6-only network (needs ipv6:)" },
            "ipv6": {
                "type": "object",
                "additionalProperties": false,
                "required": ["subnet"],
                "properties": { "subnet": cidr6(), "gateway": ipv6(), "ip_range": cidr6() }
            },
            "internal": { "type": "boolean" },
            "mtu": { "type": "integer", "minimum": 68, "maximum": 65535 },
            "aux_addresses": {
                "description": "addresses of the subnet reserved for other devices, never given to an endpoint",
                "type": "object",
                "additionalProperties": ip()
            },
            "options": { "type": "object" },
            "ipam": {
                "type": "object",
                "additionalProperties": false,
                "required": ["driver"],
                "properties": {
                    "driver": identifier(obj),
                    "options": { "type": "object", "additionalProperties": { "type": ["string", "number", "boolean"] } }
                }
            }
        },
        "allOf": per_driver
    })
}

/// A sandbox: names, DNS, an existing namespace, sysctls.
fn sandbox() -> Value {
    use crate::spec::limits;
    let obj = crate::store::MAX_OBJECT_NAME;
    let dns = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "servers": { "type": "array", "items": ip(), "maxItems": limits::DNS_SERVERS },
            "search": strings(limits::DNS_SEARCH),
            "options": strings(limits::DNS_OPTIONS)
        }
    });
    json!({
        "type": ["object", "null"],
        "additionalProperties": false,
        "properties": {
            "hostname": { "type": "string" },
            "domainname": { "type": "string" },
            "dns": dns,
            "host": identifier(obj),
            "extra_hosts": {
                "type": "array",
                "maxItems": 256,
                "items": { "type": "string", "pattern": "^[^:]+:.+$", "description": "NAME:IP, IP may be host-gateway" }
            },
            "netns": {
                "description": "an existing network namespace to use instead of one cnm makes: a path, pid:N, docker:NAME or podman:NAME",
                "type": "string",
                "pattern": "^(/.*|pid:[1-9][0-9]*|(docker|podman):[A-Za-z0-9][A-Za-z0-9_.-]*)$"
            },
            "container_id": {
                "description": "the runtime's ID of the container this sandbox is (CNI_CONTAINERID), kept verbatim",
                "type": "string",
                "maxLength": 256,
                "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"
            },
            "sysctls": {
                "description": "namespaced net.* sysctls set inside the sandbox",
                "type": "object",
                "maxProperties": 64,
                "propertyNames": { "pattern": "^net\\.[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)+$" },
                "additionalProperties": { "type": ["string", "number", "boolean"] }
            }
        }
    })
}

/// An endpoint: a sandbox joined to a network.
fn endpoint() -> Value {
    use crate::spec::limits;
    let obj = crate::store::MAX_OBJECT_NAME;
    let port = port();
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["network", "sandbox"],
        "properties": {
            "network": identifier(obj),
            "sandbox": identifier(obj),
            "address": ipv4(),
            "ipv6_address": ipv6(),
            "mac": { "type": "string", "pattern": "^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$" },
            "ifname": ifname(),
            "aliases": { "type": "array", "items": { "type": "string" }, "maxItems": limits::ALIASES },
            "ports": { "type": "array", "items": port, "maxItems": limits::PORTS },
            "gateway": { "type": "boolean", "description": "the sandbox's default route goes through this endpoint" }
        }
    })
}

/// [`schema`] of cnm's own drivers, as `cnm schema` prints it.
pub fn text() -> String {
    let mut s = serde_json::to_string_pretty(&schema(Registry::builtin())).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use crate::topology::raw::*;
    use serde::de::{self, value::Error, Deserialize, Visitor};
    use std::collections::BTreeSet;

    /// A deserializer that answers every request with an error naming the
    /// fields a struct asked for: serde's own list of the keys a type
    /// reads, which the schema must list too.
    struct FieldsOf;

    impl<'de> de::Deserializer<'de> for FieldsOf {
        type Error = Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Error> {
            Err(de::Error::custom(fields.join(",")))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    fn fields<'de, T: Deserialize<'de>>() -> BTreeSet<String> {
        match T::deserialize(FieldsOf) {
            Err(e) => e.to_string().split(',').map(str::to_string).collect(),
            Ok(_) => panic!("a struct was expected"),
        }
    }

    fn keys(schema: &serde_json::Value, pointer: &str) -> BTreeSet<String> {
        let props = schema
            .pointer(pointer)
            .and_then(|p| p.as_object())
            .unwrap_or_else(|| panic!("no properties at {pointer}"));
        props.keys().cloned().collect()
    }

    /// The hand-written schema lists exactly the keys the parser reads, for
    /// every object of the file: a key added to one and not the other
    /// fails here (and `tests/schema.rs` keeps the committed copy equal).
    #[test]
    fn the_schema_lists_every_key_the_parser_reads() {
        let s = super::schema(crate::drivers::Registry::builtin());
        let net = "/properties/networks/additionalProperties/properties";
        let sandbox = "/properties/sandboxes/additionalProperties/properties";
        let pairs: [(BTreeSet<String>, String); 9] = [
            (fields::<RawTopology>(), "/properties".into()),
            (fields::<RawTopDns>(), "/properties/dns/properties".into()),
            (
                fields::<RawHost>(),
                "/properties/hosts/additionalProperties/properties".into(),
            ),
            (fields::<RawNetwork>(), net.into()),
            (fields::<RawIpam>(), format!("{net}/ipam/properties")),
            (fields::<RawIpv6>(), format!("{net}/ipv6/properties")),
            (fields::<RawSandbox>(), sandbox.into()),
            (fields::<RawDns>(), format!("{sandbox}/dns/properties")),
            (
                fields::<RawEndpoint>(),
                "/properties/endpoints/additionalProperties/properties".into(),
            ),
        ];
        for (read, pointer) in pairs {
            assert_eq!(read, keys(&s, &pointer), "keys at {pointer}");
        }
    }
}
