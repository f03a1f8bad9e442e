//! Port 53 stays the workload's (Docker's scheme): the resolver listens on
//! 127.0.0.11 at a port of its own in each sandbox, and a small nftables
//! table inside the sandbox's namespace sends 127.0.0.11:53 there:
//!
//! ```text
//! table ip cnm-dns {                      # comment "cnm:<t>:sandbox:<s>"
//!   chain output      { type nat hook output priority -100
//!     ip daddr 127.0.0.11 th dport 53 dnat to 127.0.0.11:PORT }
//!   chain postrouting { type nat hook postrouting priority 100
//!     ip saddr 127.0.0.11 th sport PORT snat to :53 }
//! }
//! ```
//!
//! Conntrack turns the replies' source back to :53; the `snat` rules do it
//! for a reply whose connection entry is gone (as Docker's
//! DOCKER_POSTROUTING does). One port serves UDP and TCP, so one rule a
//! chain covers both (`th`: the transport header's ports). It is chosen
//! once per sandbox, above the kernel's default ephemeral range (so no
//! outgoing connection of the sandbox takes it), recorded, and given to
//! every later resolver: a restart rewrites no rule. The functions that
//! touch the kernel act in the calling thread's namespace.

use crate::netlink::nft::{self, Batch, Expr, NatChain, TableView};
use netlink_packet_netfilter::nftables::InetHookNumber;

/// The table's name inside each sandbox.
pub const TABLE: &str = "cnm-dns";

/// Ports chosen for the resolver: above Linux's default ephemeral range
/// (32768–60999).
const FIRST_PORT: u16 = 61000;
const PORTS: u16 = 4500;

/// The port a sandbox's resolver gets when none is recorded: derived from
/// its names, so that plan shows it and every host of a multi-host file
/// agrees.
pub fn port_for(topology: &str, sandbox: &str) -> u16 {
    let h = crate::naming::short_hash(&[topology, "dns", sandbox], 8);
    let n = u32::from_str_radix(&h, 16).unwrap_or(0);
    FIRST_PORT + (n % u32::from(PORTS)) as u16
}

/// nft's table comment: user data type 0 (NFTNL_UDATA_TABLE_COMMENT),
/// its length, the text with its NUL.
fn comment(mark: &str) -> Vec<u8> {
    let mut text = mark.as_bytes().to_vec();
    text.push(0);
    let mut out = vec![0, text.len() as u8];
    out.extend(text);
    out
}

fn mark_of(userdata: &[u8]) -> Option<String> {
    let (&kind, rest) = userdata.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let text = rest.get(..usize::from(len))?;
    (kind == 0).then(|| String::from_utf8_lossy(text.strip_suffix(&[0]).unwrap_or(text)).into())
}

const LOCAL: [u8; 4] = [127, 0, 0, 11];
/// 127.0.0.11 as a rule's compared value reads back.
pub const LOCAL_HEX: &str = "7f00000b";

fn chains() -> [NatChain; 2] {
    [
        NatChain {
            name: "output".into(),
            hook: InetHookNumber::LocalOut,
            priority: -100,
        },
        NatChain {
            name: "postrouting".into(),
            hook: InetHookNumber::PostRouting,
            priority: 100,
        },
    ]
}

/// Each chain's rules for `port`: one rule a chain, for UDP and TCP alike
/// (their ports sit at the same place in the transport header, and one
/// port serves both). A NAT rule costs the kernel some 80 µs to take in,
/// per namespace: two rules instead of four keep a thousand sandboxes'
/// tables within a tenth of their apply.
fn rules(port: u16) -> Vec<(&'static str, Vec<Expr>)> {
    vec![
        (
            "output",
            vec![
                Expr::Payload {
                    base: nft::NETWORK_HEADER,
                    offset: 16,
                    len: 4,
                },
                Expr::Eq(LOCAL.to_vec()),
                Expr::Payload {
                    base: nft::TRANSPORT_HEADER,
                    offset: 2,
                    len: 2,
                },
                Expr::Eq(53u16.to_be_bytes().to_vec()),
                Expr::Imm {
                    reg: 1,
                    data: LOCAL.to_vec(),
                },
                Expr::Imm {
                    reg: 2,
                    data: port.to_be_bytes().to_vec(),
                },
                Expr::Nat {
                    kind: nft::DNAT,
                    addr: true,
                    port_reg: 2,
                },
            ],
        ),
        (
            "postrouting",
            vec![
                Expr::Payload {
                    base: nft::NETWORK_HEADER,
                    offset: 12,
                    len: 4,
                },
                Expr::Eq(LOCAL.to_vec()),
                Expr::Payload {
                    base: nft::TRANSPORT_HEADER,
                    offset: 0,
                    len: 2,
                },
                Expr::Eq(port.to_be_bytes().to_vec()),
                Expr::Imm {
                    reg: 1,
                    data: 53u16.to_be_bytes().to_vec(),
                },
                Expr::Nat {
                    kind: nft::SNAT,
                    addr: false,
                    port_reg: 1,
                },
            ],
        ),
    ]
}

/// Write the table for `port`, marked `mark`, in one transaction: made
/// anew (`fresh`: there is none yet), or replacing one (a repair; the
/// kernel then waits out a grace period for the old hooks, ~15 ms).
pub fn write(mark: &str, port: u16, fresh: bool) -> std::io::Result<()> {
    let mut b = Batch::default();
    if fresh {
        b.create_table(TABLE, &comment(mark));
    } else {
        b.replace_table(TABLE, &comment(mark));
    }
    for c in chains() {
        b.add_chain(TABLE, &c);
    }
    for (chain, exprs) in rules(port) {
        b.add_rule(TABLE, chain, &exprs);
    }
    b.send()
}

/// Delete the table (nothing when it is not there).
pub fn remove() -> std::io::Result<()> {
    let mut b = Batch::default();
    b.delete_table(TABLE);
    match b.send() {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        other => other,
    }
}

/// The table as found in a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its mark (the table's comment), if any.
    pub mark: Option<String>,
    /// The port its first rule sends 127.0.0.11:53 to, if it has one.
    pub port: Option<u16>,
    /// Its rules are exactly the ones cnm writes for that port.
    pub intact: bool,
}

/// Read the table back; `None` when there is none.
pub fn read() -> std::io::Result<Option<Found>> {
    Ok(nft::read_table(TABLE)?.map(|v| judge(&v)))
}

/// What a table read back says.
pub fn judge(v: &TableView) -> Found {
    let port = v
        .rules
        .first()
        .and_then(|(_, exprs)| {
            exprs
                .iter()
                .filter_map(|e| e.strip_prefix("immediate "))
                .nth(1)
        })
        .and_then(|hex| u16::from_str_radix(hex, 16).ok());
    let intact = port.is_some_and(|p| {
        let want: Vec<(String, Vec<String>)> = rules(p)
            .into_iter()
            .map(|(c, e)| (c.to_string(), nft::normalize_written(&e)))
            .collect();
        want == v.rules
    });
    Found {
        mark: mark_of(&v.userdata),
        port,
        intact,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stable_and_outside_the_ephemeral_range() {
        let p = port_for("quick", "alpha");
        assert_eq!(p, port_for("quick", "alpha"));
        assert!((FIRST_PORT..FIRST_PORT + PORTS).contains(&p));
        assert_ne!(p, port_for("quick", "beta"));
    }

    #[test]
    fn the_mark_round_trips_through_the_comment() {
        assert_eq!(
            mark_of(&comment("cnm:quick:sandbox:alpha")).as_deref(),
            Some("cnm:quick:sandbox:alpha")
        );
    }

    /// In a network namespace of this test's own (a thread that unshared
    /// it: nothing of the machine's is touched), the table is written,
    /// read back as written, rewritten for another port, and removed.
    #[test]
    fn written_tables_read_back_intact() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("redirect: SKIPPED: needs root (a network namespace of its own)");
            return;
        }
        let t = std::thread::spawn(|| -> Result<(), String> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| e.to_string())?;
            let e = |e: std::io::Error| e.to_string();
            assert_eq!(read().map_err(e)?, None);
            write("cnm:t:sandbox:s", 61001, true).map_err(e)?;
            let found = read().map_err(e)?.ok_or("no table")?;
            assert_eq!(
                found,
                Found {
                    mark: Some("cnm:t:sandbox:s".into()),
                    port: Some(61001),
                    intact: true
                }
            );
            write("cnm:t:sandbox:s", 61002, false).map_err(e)?;
            assert_eq!(read().map_err(e)?.and_then(|f| f.port), Some(61002));
            remove().map_err(e)?;
            remove().map_err(e)?;
            assert_eq!(read().map_err(e)?, None);
            Ok(())
        });
        t.join()
            .expect("thread")
            .expect("in a namespace of its own");
    }
}
