# Correct on topologies a Docker user writes: drivers decided by plan,
# conflicts with other topologies and with listening services, hairpin to
# self, show round trips, host-stack sandboxes, one-apply repairs, drift
# on cnm's interfaces, coexistence with iptables' FORWARD DROP, and the
# README's exit codes.
source "$(dirname "$0")/lib.sh"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
bg() { "$@" >/dev/null 2>&1 & PIDS+=($!); }

# The outside world: a namespace routed to this host over a veth.
ip netns add outside
ip link add ext0 type veth peer name ext1 netns outside
ip addr add 192.0.2.1/24 dev ext0
ip link set ext0 up
ip netns exec outside ip addr add 192.0.2.2/24 dev ext1
ip netns exec outside ip link set ext1 up
ip netns exec outside ip link set lo up
ip netns exec outside ip route add default via 192.0.2.1
sleep 1 # carrier and IPv6 link-local settle before any snapshot

step "validate accepts any driver name; plan refuses one it cannot find, once, located"
D="$WORK/drv.yaml"
printf 'version: 1\nname: drv\nnetworks:\n  n: { driver: warp, subnet: 10.31.0.0/24 }\n  m: { driver: warp }\nsandboxes: { s: {} }\nendpoints:\n  e: { network: n, sandbox: s, address: 10.31.0.9 }\n' >"$D"
expect_rc 0 cnm validate "$D"
snapshot >"$WORK/before"
expect_rc 1 cnm plan "$D"
grep >/dev/null "$D:5:16: network m: driver 'warp' is neither built in ([a-z, ]*overlay[a-z, ]*) nor a plugin; looked for /run/docker/plugins/warp.sock" "$WORK/err" \
  || grep >/dev/null "$D:4:16: network n: driver 'warp' is neither built in" "$WORK/err" || fail "unknown driver: $(cat "$WORK/err")"
[ "$(grep -c 'driver' "$WORK/err")" = 1 ] || fail "more than one error: $(cat "$WORK/err")"
snapshot >"$WORK/after"
diff -u "$WORK/before" "$WORK/after" || fail "a refused plan changed the kernel"

step "what another topology holds is refused, naming it"
expect_rc 0 cnm apply "$EXAMPLES/quickstart.yaml"
expect_rc 0 cnm apply "$EXAMPLES/two-tier.yaml"
O="$WORK/other.yaml"
other() { printf 'version: 1\nname: other\nnetworks:\n  n: { %s }\nsandboxes: { s: {} }\nendpoints:\n  e: { network: n, sandbox: s%s }\n' "$1" "$2" >"$O"; }
other "subnet: 10.88.0.0/16" ""
expect_rc 1 cnm plan "$O"
grep >/dev/null "network n: subnet 10.88.0.0/16 overlaps subnet 10.88.0.0/24 of topology quick" "$WORK/err" || fail "subnet: $(cat "$WORK/err")"
other "subnet: 10.32.0.0/24, options: { bridge_name: br-quick-lan }" ""
expect_rc 1 cnm plan "$O"
grep >/dev/null "bridge name br-quick-lan is the bridge of topology quick" "$WORK/err" || fail "bridge: $(cat "$WORK/err")"
other "subnet: 10.32.0.0/24" ', ports: ["8080:80"]'
expect_rc 1 cnm plan "$O"
grep >/dev/null "host port 8080:80/tcp meets the published port 8080/tcp of topology shop" "$WORK/err" || fail "port: $(cat "$WORK/err")"
OV="$WORK/ov.yaml"
ov() { printf 'version: 1\nname: %s\nhosts: { h1: { address: 192.0.2.1 } }\nnetworks:\n  o: { driver: overlay, subnet: %s, options: { vni: 7000 } }\nsandboxes: { s: { host: h1 } }\nendpoints:\n  e: { network: o, sandbox: s }\n' "$1" "$2" >"$OV"; }
ov ov1 10.33.0.0/24
expect_rc 0 cnm apply "$OV"
ov ov2 10.34.0.0/24
expect_rc 1 cnm plan "$OV"
grep >/dev/null "vni 7000 is the vni of topology ov1" "$WORK/err" || fail "vni: $(cat "$WORK/err")"
expect_rc 0 cnm destroy --topology ov1

step "a host port a process already listens on is refused, naming the process"
bg socat TCP-LISTEN:2222,fork,reuseaddr SYSTEM:'echo sshd'
sleep 0.3
other "subnet: 10.32.0.0/24" ', ports: ["2222:22"]'
expect_rc 1 cnm plan "$O"
grep >/dev/null "host port 2222/tcp is already in use on this host: socat (pid [0-9]*) listens on 0.0.0.0:2222" "$WORK/err" || fail "listener: $(cat "$WORK/err")"

step "hairpin: a sandbox reaches its own published port through a host address"
bg "$CNM" exec web -- socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:'echo web-tcp'
sleep 0.5
got=$("$CNM" exec web -- socat -T2 - TCP:192.0.2.1:8080,connect-timeout=2 2>/dev/null || true)
[ "$got" = web-tcp ] || fail "web → its own published port: got '$got'"

step "show round trip: every example, YAML and JSON, explicit 0.0.0.0"
expect_rc 0 cnm apply "$EXAMPLES/null-host.yaml"
E="$WORK/explicit.yaml"
printf 'version: 1\nname: expl\nnetworks:\n  n: { subnet: 10.35.0.0/24, ipv6: { subnet: "fd00:35::/64" } }\nsandboxes: { s: {} }\nendpoints:\n  e: { network: n, sandbox: s, ports: ["0.0.0.0:9090:90", "9091:91/udp"] }\n' >"$E"
expect_rc 0 cnm apply "$E"
for t in quick shop misc expl; do
  "$CNM" show --topology "$t" >"$WORK/$t.yaml" || fail "show $t"
  converged "$WORK/$t.yaml" || { cat "$WORK/$t.yaml"; fail "show $t does not plan to no changes"; }
  "$CNM" show --topology "$t" -o json >"$WORK/$t.json" || fail "show -o json $t"
  converged "$WORK/$t.json"
done
grep >/dev/null '0.0.0.0:9090:90/tcp' "$WORK/expl.yaml" || fail "explicit 0.0.0.0 dropped: $(cat "$WORK/expl.yaml")"
grep >/dev/null 'dns:' "$WORK/quick.yaml" && fail "show invented dns: $(cat "$WORK/quick.yaml")"
grep >/dev/null 'agent' "$WORK/misc.yaml" || fail "show misses the host-stack sandbox"
"$CNM" show -o json >"$WORK/all.json"
expect_rc 1 cnm plan "$WORK/all.json"
grep >/dev/null "list of topologies" "$WORK/err" || fail "list: $(cat "$WORK/err")"
expect_rc 1 cnm show --topology nope
grep >/dev/null "no topology of that name is applied" "$WORK/err" || fail "show nope: $(cat "$WORK/err")"

step "exec runs in a host-stack sandbox"
[ "$("$CNM" exec agent -- readlink /proc/self/ns/net)" = "$(readlink /proc/self/ns/net)" ] || fail "agent does not share the host's stack"

step "a veth renamed by someone converges in one apply (its routes too)"
v=$(ip -o link | grep 'alias cnm:shop:endpoint:web-front' | grep -o 've-[0-9a-f]*' | head -1)
[ -n "$v" ] || fail "no web-front veth"
ip link set "$v" down; ip link set "$v" name renamed0; ip link set renamed0 up
expect_rc 0 cnm apply "$EXAMPLES/two-tier.yaml"
converged "$EXAMPLES/two-tier.yaml"
ip netns exec shop-web ip route | grep >/dev/null "default via 10.10.0.1" || fail "default route lost"

step "extra routes and addresses on cnm's interfaces, and loopback's, are drift; the kernel's own are not"
ip netns exec shop-db ip addr del 127.0.0.1/8 dev lo
ip netns exec shop-web ip addr add 10.10.0.99/24 dev eth1
ip netns exec shop-web ip route add 10.123.0.0/16 via 10.10.0.1 dev eth1
ip netns exec shop-api ip link add d0 type veth peer name d1
ip netns exec shop-api ip addr add 10.125.0.1/24 dev d0
ip netns exec shop-api ip link set d0 up
ip netns exec shop-api ip route add 10.126.0.0/16 dev d0
pending "$EXAMPLES/two-tier.yaml"
grep >/dev/null -- "- route web: 10.123.0.0/16 via 10.10.0.1 dev eth1" "$WORK/out" || fail "extra route: $(cat "$WORK/out")"
grep >/dev/null "loopback addresses" "$WORK/out" || fail "loopback: $(cat "$WORK/out")"
grep >/dev/null "10.10.0.99" "$WORK/out" || fail "extra address: $(cat "$WORK/out")"
grep >/dev/null "10.126.0.0" "$WORK/out" && fail "a route on someone else's link is not cnm's: $(cat "$WORK/out")"
expect_rc 0 cnm apply "$EXAMPLES/two-tier.yaml"
converged "$EXAMPLES/two-tier.yaml"
ip netns exec shop-db ip -o addr show dev lo | grep >/dev/null "127.0.0.1/8" || fail "loopback address not repaired"
ip netns exec shop-api ip route | grep >/dev/null 10.126.0.0 || fail "a foreign link's route was removed"
reach web db

step "next to iptables' FORWARD policy DROP, traffic still flows"
expect_rc 0 cnm destroy --topology shop
iptables -P FORWARD DROP
ip6tables -P FORWARD DROP
expect_rc 0 cnm apply "$EXAMPLES/two-tier.yaml"
converged "$EXAMPLES/two-tier.yaml"
bg ip netns exec outside socat TCP-LISTEN:9000,fork,reuseaddr SYSTEM:'echo peer=$SOCAT_PEERADDR'
bg "$CNM" exec web -- socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:'echo web-tcp'
sleep 0.5
got=$("$CNM" exec api -- socat -T2 - TCP:192.0.2.2:9000,connect-timeout=2 2>/dev/null || true)
[ "$got" = "peer=192.0.2.1" ] || fail "outbound under FORWARD DROP: got '$got'"
got=$(ip netns exec outside socat -T2 - TCP:192.0.2.1:8080,connect-timeout=2 2>/dev/null || true)
[ "$got" = web-tcp ] || fail "published port under FORWARD DROP: got '$got'"
iptables -L FORWARD -n >/dev/null || fail "iptables can no longer read its FORWARD chain"
expect_rc 0 cnm destroy --topology shop
nft list chain ip filter FORWARD | grep >/dev/null cnm: && fail "cnm's accept rules left behind"
nft delete table ip filter
nft delete table ip6 filter

step "progress: on a terminal only, one line rewritten in place"
P="$WORK/prog.yaml"
printf 'version: 1\nname: prog\nnetworks:\n  n: { subnet: 10.125.0.0/24 }\nsandboxes: { a: {}, b: {} }\nendpoints:\n  a-n: { network: n, sandbox: a }\n  b-n: { network: n, sandbox: b }\n' >"$P"
tty_out=$(CNM_PROGRESS_AFTER_MS=0 script -qec "$CNM apply $P" /dev/null)
grep >/dev/null "applying: 0/[0-9]* actions done, now sandbox a" <<<"$tty_out" || fail "no progress on a terminal: $tty_out"
grep >/dev/null "Apply complete" <<<"$tty_out" || fail "apply on a terminal: $tty_out"
expect_rc 0 cnm destroy "$P"
CNM_PROGRESS_AFTER_MS=0 expect_rc 0 cnm apply "$P"
grep >/dev/null "applying:" "$WORK/err" "$WORK/out" && fail "progress written without a terminal"
expect_rc 0 cnm destroy "$P"

step "the README's exit codes"
Q="$EXAMPLES/quickstart.yaml"
B="$WORK/bad.yaml"; printf 'version: 1\nname: b\nnetworks:\n  n: { subnet: nope }\n' >"$B"
expect_rc 0 cnm validate "$Q"
expect_rc 1 cnm validate "$B"
expect_rc 0 cnm plan "$Q"
expect_rc 0 cnm plan --detailed-exitcode "$Q"
expect_rc 2 cnm plan --detailed-exitcode "$EXAMPLES/two-tier.yaml"
expect_rc 1 cnm plan --detailed-exitcode "$B"
expect_rc 0 cnm apply "$Q"
expect_rc 1 cnm apply "$B"
# -o json: errors as one versioned object per problem, apply's outcome as JSON.
expect_rc 1 cnm plan -o json "$B"
for want in '"error_version":1' '"line":4' '"column":16' '"key":"networks.n.subnet"' '"message":"network n: subnet'; do
  grep -F >/dev/null "$want" "$WORK/out" || fail "plan -o json error lacks $want: $(cat "$WORK/out")"
done
[ "$(wc -l <"$WORK/out")" = 1 ] || fail "one object per problem: $(cat "$WORK/out")"
expect_rc 1 cnm apply -o json "$B"
grep -F >/dev/null '"key":"networks.n.subnet"' "$WORK/out" || fail "apply -o json error: $(cat "$WORK/out")"
expect_rc 0 cnm apply -o json "$Q"
grep -F >/dev/null '"result": "no changes"' "$WORK/out" || fail "apply -o json: $(cat "$WORK/out")"
expect_rc 0 cnm destroy "$Q"
expect_rc 0 cnm apply -o json "$Q"
for want in '"result": "applied"' '"format_version": 2' '"op": "create"' '"ms":'; do
  grep -F >/dev/null "$want" "$WORK/out" || fail "apply -o json lacks $want: $(cat "$WORK/out")"
done
expect_rc 0 cnm show --topology quick
expect_rc 1 cnm show --topology nope
expect_rc 0 cnm destroy --topology expl
expect_rc 1 cnm destroy --topology ../x
expect_rc 7 cnm exec alpha -- sh -c 'exit 7'
expect_rc 1 cnm exec nobody -- true
expect_rc 0 cnm graph "$Q"
expect_rc 1 cnm graph "$B"
expect_rc 0 cnm graph --observed "$Q"
expect_rc 0 cnm status
for cmd in validate plan apply destroy show exec watch graph status; do
  expect_rc 1 cnm "$cmd" --no-such-flag
done
expect_rc 1 cnm
expect_rc 0 cnm --help
expect_rc 0 cnm --version
echo "PASS"
