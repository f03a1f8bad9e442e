//! The IpamDriver side: pools that may not overlap, and addresses handed
//! out lowest first.

use crate::state::{Pool, State};
use anyhow::{anyhow, bail, Context, Result};
use ipnetwork::IpNetwork;
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Where pools are chosen from when the client names none: (base, base
/// prefix length, pool prefix length).
const AUTO_V4: (IpAddr, u8, u8) = (IpAddr::V4(Ipv4Addr::new(10, 199, 0, 0)), 16, 24);
const AUTO_V6: (IpAddr, u8, u8) = (
    IpAddr::V6(Ipv6Addr::new(0xfd99, 0x199, 0, 0, 0, 0, 0, 0)),
    48,
    64,
);

#[derive(Deserialize)]
struct RequestPoolReq {
    #[serde(rename = "AddressSpace", default)]
    address_space: String,
    #[serde(rename = "Pool", default)]
    pool: String,
    #[serde(rename = "SubPool", default)]
    sub_pool: String,
    #[serde(rename = "V6", default)]
    v6: bool,
}

#[derive(Deserialize)]
struct PoolReq {
    #[serde(rename = "PoolID")]
    pool_id: String,
}

/// RequestAddress and ReleaseAddress. `Options` (e.g. the gateway's
/// `RequestAddressType`) needs no special casing, so it is not read.
#[derive(Deserialize)]
struct AddressReq {
    #[serde(rename = "PoolID")]
    pool_id: String,
    #[serde(rename = "Address", default)]
    address: String,
}

fn parse<T: serde::de::DeserializeOwned>(body: Value) -> Result<T> {
    serde_json::from_value(body).context("invalid request")
}

/// A CIDR, brought to its network address ("10.1.0.5/24" is 10.1.0.0/24).
fn parse_cidr(what: &str, s: &str) -> Result<IpNetwork> {
    if !s.contains('/') {
        bail!("invalid {what} {s:?}: want a CIDR");
    }
    let n: IpNetwork = s
        .parse()
        .map_err(|e| anyhow!("invalid {what} {s:?}: {e}"))?;
    Ok(IpNetwork::new(n.network(), n.prefix())?)
}

fn overlaps(a: &IpNetwork, b: &IpNetwork) -> bool {
    a.contains(b.network()) || b.contains(a.network())
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a).into(),
        IpAddr::V6(a) => a.into(),
    }
}

fn from_u128(v: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(v.into())
    } else {
        // Only called with values inside an IPv4 network, so this never truncates.
        IpAddr::V4((v as u32).into())
    }
}

/// The first and last address of `n` as numbers.
fn bounds(n: &IpNetwork) -> (u128, u128) {
    (to_u128(n.network()), to_u128(n.broadcast()))
}

/// The network address, and in IPv4 the broadcast address, are never handed out.
fn reserved(pool: &IpNetwork, ip: IpAddr) -> Option<&'static str> {
    if ip == pool.network() {
        Some("network")
    } else if pool.is_ipv4() && ip == pool.broadcast() {
        Some("broadcast")
    } else {
        None
    }
}

/// The first free /`len` in `base`/`base_len` that overlaps no existing pool.
fn choose_pool(st: &State, (base, base_len, len): (IpAddr, u8, u8)) -> Result<IpNetwork> {
    let taken = st
        .pools
        .values()
        .map(|p| parse_cidr("pool", &p.pool))
        .collect::<Result<Vec<_>>>()?;
    let v6 = base.is_ipv6();
    let step = 1u128 << ((if v6 { 128 } else { 32 }) - len);
    let start = to_u128(base);
    for i in 0..(1u128 << (len - base_len)) {
        let n = IpNetwork::new(from_u128(start + i * step, v6), len)?;
        if !taken.iter().any(|t| overlaps(t, &n)) {
            return Ok(n);
        }
    }
    bail!("no free pool left in {base}/{base_len}")
}

pub fn get_capabilities() -> Value {
    json!({"RequiresMACAddress": false, "RequiresRequestReplay": false})
}

pub fn get_default_address_spaces() -> Value {
    json!({"LocalDefaultAddressSpace": "local", "GlobalDefaultAddressSpace": "global"})
}

pub fn request_pool(st: &mut State, body: Value) -> Result<Value> {
    let r: RequestPoolReq = parse(body)?;
    let pool = if r.pool.is_empty() {
        if !r.sub_pool.is_empty() {
            bail!("SubPool {} given without Pool", r.sub_pool);
        }
        choose_pool(st, if r.v6 { AUTO_V6 } else { AUTO_V4 })?
    } else {
        let pool = parse_cidr("pool", &r.pool)?;
        for p in st.pools.values() {
            if overlaps(&parse_cidr("pool", &p.pool)?, &pool) {
                bail!("pool {pool} overlaps pool {}", p.pool);
            }
        }
        pool
    };
    let space = match r.address_space.as_str() {
        "" => "local",
        s => s,
    };
    let mut id = format!("{space}/{pool}");
    let sub_pool = if r.sub_pool.is_empty() {
        String::new()
    } else {
        let sub = parse_cidr("sub-pool", &r.sub_pool)?;
        if sub.is_ipv4() != pool.is_ipv4()
            || !pool.contains(sub.network())
            || sub.prefix() < pool.prefix()
        {
            bail!("sub-pool {sub} is not within pool {pool}");
        }
        id = format!("{id}/{sub}");
        sub.to_string()
    };
    st.pools.insert(
        id.clone(),
        Pool {
            pool: pool.to_string(),
            sub_pool,
            v6: pool.is_ipv6(),
        },
    );
    Ok(json!({"PoolID": id, "Pool": pool.to_string(), "Data": {}}))
}

pub fn release_pool(st: &mut State, body: Value) -> Result<Value> {
    let r: PoolReq = parse(body)?;
    if st.pools.remove(&r.pool_id).is_none() {
        bail!("pool {} not found", r.pool_id);
    }
    st.addresses.remove(&r.pool_id);
    Ok(json!({}))
}

pub fn request_address(st: &mut State, body: Value) -> Result<Value> {
    let r: AddressReq = parse(body)?;
    let p = st
        .pools
        .get(&r.pool_id)
        .ok_or_else(|| anyhow!("pool {} not found", r.pool_id))?;
    let pool = parse_cidr("pool", &p.pool)?;
    let used = st.addresses.get(&r.pool_id);
    let in_use = |ip: &IpAddr| used.is_some_and(|u| u.contains(ip));
    let ip = if r.address.is_empty() {
        let range = match p.sub_pool.as_str() {
            "" => pool,
            s => parse_cidr("sub-pool", s)?,
        };
        let (first, last) = bounds(&range);
        // Ends after at most (addresses in use + 2) steps unless the range is full.
        let mut next = (first..=last)
            .map(|v| from_u128(v, pool.is_ipv6()))
            .filter(|ip| reserved(&pool, *ip).is_none() && !in_use(ip));
        next.next()
            .ok_or_else(|| anyhow!("pool {} is full", r.pool_id))?
    } else {
        let ip: IpAddr = r
            .address
            .parse()
            .map_err(|e| anyhow!("invalid address {:?}: {e}", r.address))?;
        if !pool.contains(ip) {
            bail!("address {ip} is outside pool {pool}");
        }
        if let Some(what) = reserved(&pool, ip) {
            bail!("address {ip} is the {what} address of pool {pool}");
        }
        if in_use(&ip) {
            bail!("address {ip} is in use");
        }
        ip
    };
    st.addresses.entry(r.pool_id).or_default().insert(ip);
    Ok(json!({"Address": format!("{ip}/{}", pool.prefix()), "Data": {}}))
}

pub fn release_address(st: &mut State, body: Value) -> Result<Value> {
    let r: AddressReq = parse(body)?;
    let ip: IpAddr = r
        .address
        .parse()
        .map_err(|e| anyhow!("invalid address {:?}: {e}", r.address))?;
    let used = st
        .addresses
        .get_mut(&r.pool_id)
        .filter(|u| u.contains(&ip))
        .ok_or_else(|| anyhow!("address {ip} is not allocated in pool {}", r.pool_id))?;
    used.remove(&ip);
    if used.is_empty() {
        st.addresses.remove(&r.pool_id);
    }
    Ok(json!({}))
}
