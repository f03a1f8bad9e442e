//! Address management. Pure functions: given what the file asks for and what
//! already exists, choose subnets and addresses deterministically.

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

/// libnetwork's default local address pools, in order, as (base, subnet size):
/// 172.17-19.0.0/16, 172.20.0.0/14, 172.24.0.0/14 and 172.28.0.0/14 as /16s,
/// then 192.168.0.0/16 as /20s.
const DEFAULT_POOLS: [(Ipv4Addr, u8, u8); 7] = [
    (Ipv4Addr::new(172, 17, 0, 0), 16, 16),
    (Ipv4Addr::new(172, 18, 0, 0), 16, 16),
    (Ipv4Addr::new(172, 19, 0, 0), 16, 16),
    (Ipv4Addr::new(172, 20, 0, 0), 14, 16),
    (Ipv4Addr::new(172, 24, 0, 0), 14, 16),
    (Ipv4Addr::new(172, 28, 0, 0), 14, 16),
    (Ipv4Addr::new(192, 168, 0, 0), 16, 20),
];

/// Every candidate subnet of the default pools, in allocation order.
pub fn default_pool_subnets() -> impl Iterator<Item = Ipv4Network> {
    DEFAULT_POOLS.iter().flat_map(|&(base, prefix, size)| {
        let count = 1u32 << (size - prefix);
        let step = 1u32 << (32 - size);
        (0..count).map(move |i| {
            Ipv4Network::new(Ipv4Addr::from(u32::from(base) + i * step), size)
                .expect("pool prefixes are valid")
        })
    })
}

pub fn overlaps(a: &IpNetwork, b: &IpNetwork) -> bool {
    match (a, b) {
        (IpNetwork::V4(x), IpNetwork::V4(y)) => x.contains(y.network()) || y.contains(x.network()),
        (IpNetwork::V6(x), IpNetwork::V6(y)) => x.contains(y.network()) || y.contains(x.network()),
        _ => false,
    }
}

/// The first default-pool subnet that overlaps nothing in `taken`.
pub fn allocate_subnet(taken: &[IpNetwork]) -> Option<Ipv4Network> {
    default_pool_subnets().find(|cand| {
        let c = IpNetwork::V4(*cand);
        !taken.iter().any(|t| overlaps(&c, t))
    })
}

/// The default gateway: the subnet's first host address.
pub fn first_host_v4(subnet: Ipv4Network) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()) + 1)
}

pub fn first_host_v6(subnet: Ipv6Network) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(subnet.network()) + 1)
}

/// Lowest address of `range` (inside `subnet`) that is a usable host address
/// and not in `used`, above `after` when given (the caller knows every
/// address up to it is taken: allocations in a row start where the last
/// one ended instead of from the bottom, which made 1,000 of them
/// quadratic). IPv4 skips the network and broadcast addresses.
pub fn lowest_free_v4(
    subnet: Ipv4Network,
    range: Ipv4Network,
    used: &BTreeSet<Ipv4Addr>,
    after: Option<Ipv4Addr>,
) -> Option<Ipv4Addr> {
    let (lo, hi) = (u32::from(range.network()), u32::from(range.broadcast()));
    let (net, bcast) = (u32::from(subnet.network()), u32::from(subnet.broadcast()));
    let start = after.map_or(lo, |a| u32::from(a).saturating_add(1)).max(lo);
    let mut taken = used
        .range(Ipv4Addr::from(start)..)
        .map(|a| u32::from(*a))
        .peekable();
    for a in start..=hi {
        // `taken` walks the used addresses at or above `a`, in order.
        while taken.next_if(|u| *u < a).is_some() {}
        if a == net || a == bcast || taken.next_if_eq(&a).is_some() {
            continue;
        }
        return Some(Ipv4Addr::from(a));
    }
    None
}

/// Lowest free IPv6 host address; the subnet-router anycast address (all
/// zeros) is skipped. Scans at most 2^16 addresses, which a sandbox host
/// never exceeds.
pub fn lowest_free_v6(
    subnet: Ipv6Network,
    range: Ipv6Network,
    used: &BTreeSet<Ipv6Addr>,
    after: Option<Ipv6Addr>,
) -> Option<Ipv6Addr> {
    let lo = after
        .map_or(u128::from(range.network()), |a| {
            u128::from(a).saturating_add(1)
        })
        .max(u128::from(range.network()));
    let hi = u128::from(range.broadcast());
    let net = u128::from(subnet.network());
    (lo..=hi)
        .take(1 << 16)
        .filter(|a| *a != net)
        .map(Ipv6Addr::from)
        .find(|a| !used.contains(a))
}

/// Overlay addressing. Hosts never talk to each other, so an endpoint's
/// address must be a pure function of the file, and should not move when
/// other endpoints come and go: a hash of the endpoint's name picks a start
/// in `lo..=hi`, then the first address from there (wrapping) that is not
/// `excluded` and not `used`. Probes at most 2^16 candidates.
pub fn hashed_free(
    name: &str,
    lo: u128,
    hi: u128,
    excluded: impl Fn(u128) -> bool,
    used: &BTreeSet<u128>,
) -> Option<u128> {
    use sha2::{Digest, Sha256};
    let size = hi.checked_sub(lo)?.checked_add(1);
    let d = Sha256::digest(format!("cnm-address\0{name}").as_bytes());
    let h = u128::from_be_bytes(d[..16].try_into().ok()?);
    let start = match size {
        Some(n) => h % n,
        None => h, // the whole u128 space
    };
    let tries = size.map_or(1 << 16, |n| n.min(1 << 16));
    (0..tries)
        .map(|i| {
            let off = start.wrapping_add(i);
            lo.wrapping_add(match size {
                Some(n) => off % n,
                None => off,
            })
        })
        .find(|a| !excluded(*a) && !used.contains(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    fn n(s: &str) -> std::result::Result<IpNetwork, ipnetwork::IpNetworkError> {
        s.parse()
    }

    #[test]
    fn hashed_addresses_are_stable_and_probe_past_taken_ones() -> TestResult {
        let none = BTreeSet::new();
        let a = hashed_free("web-ov", 10, 20, |_| false, &none)
            .ok_or("no free address in an empty range")?;
        assert!((10..=20).contains(&a));
        assert_eq!(hashed_free("web-ov", 10, 20, |_| false, &none), Some(a));
        // Taken: the next one, wrapping inside the range.
        let used: BTreeSet<u128> = [a].into();
        let b = hashed_free("web-ov", 10, 20, |_| false, &used)
            .ok_or("no free address past the taken one")?;
        assert_eq!(b, if a == 20 { 10 } else { a + 1 });
        // Excluded addresses are skipped; a full range gives None.
        let full: BTreeSet<u128> = (10..=20).collect();
        assert_eq!(hashed_free("x", 10, 20, |_| false, &full), None);
        assert_eq!(
            hashed_free("x", 10, 11, |a| a == 10 || a == 11, &none),
            None
        );
        // The whole IPv6 space does not overflow.
        assert!(hashed_free("x", 0, u128::MAX, |_| false, &none).is_some());
        Ok(())
    }

    #[test]
    fn pools_follow_libnetwork_order() -> TestResult {
        let all: Vec<Ipv4Network> = default_pool_subnets().collect();
        assert_eq!(all[0].to_string(), "172.17.0.0/16");
        assert_eq!(all[3].to_string(), "172.20.0.0/16");
        assert_eq!(all[14].to_string(), "172.31.0.0/16");
        assert_eq!(all[15].to_string(), "192.168.0.0/20");
        assert_eq!(
            all.last().ok_or("no pool subnets")?.to_string(),
            "192.168.240.0/20"
        );
        assert_eq!(all.len(), 15 + 16);
        Ok(())
    }

    #[test]
    fn allocation_skips_taken_subnets() -> TestResult {
        assert_eq!(
            allocate_subnet(&[])
                .ok_or("no subnet with nothing taken")?
                .to_string(),
            "172.17.0.0/16"
        );
        let taken = [n("172.17.0.0/16")?, n("172.18.5.0/24")?, n("10.0.0.0/8")?];
        assert_eq!(
            allocate_subnet(&taken).ok_or("no subnet left")?.to_string(),
            "172.19.0.0/16"
        );
        // A wide route covering several candidates skips all of them.
        assert_eq!(
            allocate_subnet(&[n("172.16.0.0/12")?])
                .ok_or("no subnet outside 172.16.0.0/12")?
                .to_string(),
            "192.168.0.0/20"
        );
        Ok(())
    }

    #[test]
    fn exhaustion_is_none() -> TestResult {
        assert_eq!(
            allocate_subnet(&[n("172.16.0.0/12")?, n("192.168.0.0/16")?]),
            None
        );
        Ok(())
    }

    #[test]
    fn lowest_free_address() -> TestResult {
        let s: Ipv4Network = "10.0.0.0/29".parse()?;
        let used: BTreeSet<Ipv4Addr> = ["10.0.0.1", "10.0.0.2"]
            .iter()
            .map(|a| a.parse())
            .collect::<std::result::Result<_, _>>()?;
        assert_eq!(lowest_free_v4(s, s, &used, None), Some("10.0.0.3".parse()?));
        let full: BTreeSet<Ipv4Addr> = (1..7).map(|i| Ipv4Addr::new(10, 0, 0, i)).collect();
        assert_eq!(lowest_free_v4(s, s, &full, None), None);
        let range: Ipv4Network = "10.0.0.4/30".parse()?;
        assert_eq!(
            lowest_free_v4(s, range, &used, None),
            Some("10.0.0.4".parse()?)
        );
        let v6: Ipv6Network = "fd00::/64".parse()?;
        let used6: BTreeSet<Ipv6Addr> = ["fd00::1".parse()?].into();
        assert_eq!(
            lowest_free_v6(v6, v6, &used6, None),
            Some("fd00::2".parse()?)
        );
        // Above `after`, holes below it are not looked at; the broadcast
        // address is never given.
        let holes: BTreeSet<Ipv4Addr> = [1, 2, 4].map(|i| Ipv4Addr::new(10, 0, 0, i)).into();
        let after = Some(Ipv4Addr::new(10, 0, 0, 3));
        assert_eq!(
            lowest_free_v4(s, s, &holes, after),
            Some("10.0.0.5".parse()?)
        );
        assert_eq!(
            lowest_free_v4(s, s, &holes, Some(Ipv4Addr::new(10, 0, 0, 6))),
            None
        );
        Ok(())
    }
}
