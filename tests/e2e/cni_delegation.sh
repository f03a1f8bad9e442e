#!/usr/bin/env bash
# driver: cni, with Debian's reference plugins (/usr/lib/cni): bridge +
# host-local (addresses known after apply, leases released by destroy),
# tuning chained, macvlan with cnm's own addresses (a static IPAM section),
# an interface deleted by hand repaired, a missing plugin refused before any
# change, destroy leaving no lease, no cached result and no interface of
# cnm's (the bridge plugin's own bridge may stay: it is the plugin's).
source "$(dirname "$0")/lib.sh"
[ -x /usr/lib/cni/bridge ] || fail "Debian's containernetworking-plugins is not installed"
export CNI_PATH=/usr/lib/cni
T="$EXAMPLES/cni.yaml"
LEASES=/var/lib/cni/networks/cnipods-pods

step "the LAN for macvlan: lan0 here, its peer in an outside namespace at 10.151.0.1"
ip netns add outside
ip link add lan0 type veth peer name lan0-peer
ip link set lan0-peer netns outside
ip link set lan0 up
ip -n outside link set lan0-peer up
ip -n outside addr add 10.151.0.1/24 dev lan0-peer

step "plan: host-local's addresses are known after apply, cnm's are exact"
expect_rc 0 "$CNM" plan "$T"
grep -q 'endpoint web-pods .*addresses (known after apply)' "$WORK/out" || { cat "$WORK/out"; fail "pods addresses not 'known after apply'"; }
grep -q 'endpoint db-wire .*10.151.0.2/24' "$WORK/out" || { cat "$WORK/out"; fail "wire addresses not shown"; }

step "apply, converged; leases and cached results where the plugins keep them"
expect_rc 0 "$CNM" apply "$T"
converged "$T"
[ "$(find "$LEASES" -name '10.150.0.*' | wc -l)" = 2 ] || fail "host-local holds $(ls "$LEASES")"
[ "$(find /var/lib/cni/results -type f | wc -l)" = 4 ] || fail "cached results: $(ls /var/lib/cni/results)"

step "traffic: by name over the bridge plugin, out over macvlan; tuning ran"
reach web db.pods
reach db web.pods
reach web 10.151.0.1
reach db 10.151.0.1
[ "$("$CNM" exec web -- cat /proc/sys/net/ipv4/conf/eth0/accept_local)" = 1 ] || fail "tuning did not run"
"$CNM" exec web -- ip route show default | grep -q 'via 10.151.0.1 dev eth1' || fail "no default route via the wire gateway"

step "a failing CHECK is drift: tuning's sysctl undone by hand, the attachment replaced"
"$CNM" exec web -- sh -c 'echo 0 > /proc/sys/net/ipv4/conf/eth0/accept_local'
expect_rc 2 "$CNM" plan --detailed-exitcode "$T"
grep -q '! endpoint web-pods .*find it broken: CHECK of plugin tuning: .*accept_local' "$WORK/out" || { cat "$WORK/out"; fail "the CHECK's verdict is not shown"; }
expect_rc 0 "$CNM" apply "$T"
converged "$T"
[ "$("$CNM" exec web -- cat /proc/sys/net/ipv4/conf/eth0/accept_local)" = 1 ] || fail "tuning did not run again"
reach web db.pods

step "an interface deleted by hand is drift, repaired by DEL then ADD"
"$CNM" exec web -- ip link del eth1
expect_rc 2 "$CNM" plan --detailed-exitcode "$T"
expect_rc 0 "$CNM" apply "$T"
converged "$T"
reach web 10.151.0.1
"$CNM" exec web -- ip -br addr show eth1 | grep -q '10.151.0.3/24' || fail "web's wire address after repair"

step "show round-trips: applying what it prints plans nothing"
"$CNM" show >"$WORK/shown.yaml"
grep -q 'mac:' "$WORK/shown.yaml" && fail "show prints MACs the chain chose"
converged "$WORK/shown.yaml"

step "a plugin not in the CNI path is refused at plan, naming it and where cnm looked"
sed 's/type: tuning/type: nosuch/' "$T" >"$WORK/missing.yaml"
before=$(snapshot)
expect_rc 1 "$CNM" plan "$WORK/missing.yaml"
grep -q "missing.yaml:[0-9]*:[0-9]*: network pods: CNI plugin 'nosuch' is not in the CNI path (searched /usr/lib/cni)" "$WORK/err" \
  || { cat "$WORK/err"; fail "the missing plugin's error"; }
expect_rc 1 "$CNM" apply "$WORK/missing.yaml"
[ "$before" = "$(snapshot)" ] || fail "a refused apply changed the host"

step "a failing plugin: one line naming network, endpoint and plugin; nothing half made"
cat >"$WORK/failing.yaml" <<'YAML'
version: 1
name: failing
networks:
  bad:
    driver: cni
    subnet: 10.152.0.0/24
    options: { plugins: [ { type: macvlan, master: nosuchlink } ] }
sandboxes: { s: {} }
endpoints: { e: { network: bad, sandbox: s } }
YAML
expect_rc 1 "$CNM" apply "$WORK/failing.yaml"
grep -q "^cnm: network bad, endpoint e, plugin macvlan: .* (code [0-9]*)$" "$WORK/err" || { cat "$WORK/err"; fail "the plugin's error"; }
[ "$(ip netns exec failing-s ip -o link | grep -vc ' lo:')" = 0 ] || fail "a failed ADD left an interface"
expect_rc 0 "$CNM" destroy "$WORK/failing.yaml"

step "destroy: leases released, no cached result, no interface of cnm's"
expect_rc 0 "$CNM" destroy "$T"
[ -z "$(find "$LEASES" -name '10.150.0.*')" ] || fail "leases left: $(ls "$LEASES")"
[ -z "$(find /var/lib/cni/results -type f)" ] || fail "cached results left"
[ -z "$(ip netns list | grep cnipods)" ] || fail "sandboxes left"
ip -o link | grep -q 'cnm:' && fail "links of cnm's left"
[ -z "$(find /var/lib/cnm/topologies /run/cnm/topologies -mindepth 1 -maxdepth 1 2>/dev/null)" ] || fail "records left"
echo PASS
