#!/usr/bin/env bash
# macvlan end to end. A veth pair stands in for the uplink (this kernel has
# no dummy): lan0 is the parent on the host, its peer sits in an "outside"
# namespace that plays the LAN: the router 10.77.0.1 and a DNS server
# (dnsmasq) that knows the name "outside".
source "$(dirname "$0")/lib.sh"
T="$EXAMPLES/macvlan.yaml"

step "no parent yet: a plan error naming it, nothing changed"
before=$(snapshot)
expect_rc 1 "$CNM" plan "$T"
grep -q 'macvlan.yaml:13:[0-9]*: network lan: parent lan0 does not exist on this host' "$WORK/err" \
  || { cat "$WORK/err"; fail "missing parent not reported with its location"; }
[ "$before" = "$(snapshot)" ] || fail "a failed plan changed the host"

step "the uplink: lan0 here, its peer in the outside namespace"
ip link add lan0 type veth peer name lan0-peer
ip netns add outside
ip link set lan0-peer netns outside
ip link set lan0 up
ip -n outside link set lo up
ip -n outside link set lan0-peer up
ip -n outside addr add 10.77.0.1/24 dev lan0-peer
ip netns exec outside dnsmasq --no-resolv --no-hosts --keep-in-foreground \
  --listen-address=10.77.0.1 --bind-interfaces --host-record=outside,10.77.0.1 \
  --pid-file="$WORK/dnsmasq.pid" &
DNSMASQ=$!
trap 'kill $DNSMASQ 2>/dev/null; rm -rf "$WORK"' EXIT
parent_before=$(ip -d -o link show lan0 | sed -E 's/ (state|qlen) [^ ]+//g'; ip -o -4 addr show dev lan0)

# The example, with the outside DNS server as the sandboxes' resolver.
sed 's/^  web: { hostname: web }/  web: { hostname: web, dns: { servers: [10.77.0.1] } }/;
     s/^  db: {}/  db: { dns: { servers: [10.77.0.1] } }/' "$T" >"$WORK/mv.yaml"
grep -q 'servers: \[10.77.0.1\]' "$WORK/mv.yaml" || fail "could not point the sandboxes at the outside DNS"

step "apply; plan after apply is empty"
expect_rc 0 "$CNM" apply "$WORK/mv.yaml"
converged "$WORK/mv.yaml"
grep -q 'macvlan mode bridge' <<<"$(ip netns exec mv-web ip -d link show eth0)" || fail "web's eth0 is not a bridge-mode macvlan"

step "sandboxes reach each other and the outside, by name"
reach web db
reach db web
for i in $(seq 50); do
  ip netns exec outside ss -lun | grep -q '10.77.0.1:53' && break; sleep 0.1
done
reach web outside
reach db outside
grep -q '^10.77.0.1 ' <<<"$("$CNM" exec web -- getent hosts outside)" || fail "outside did not resolve through the sandbox's resolv.conf"
ip netns exec outside ping -c1 -W1 -q 10.77.0.20 >/dev/null || fail "the outside cannot reach db"

step "the host cannot reach its own macvlan children (documented)"
ip addr add 10.77.0.254/24 dev lan0
if ping -c1 -W1 -q 10.77.0.20 >/dev/null 2>&1; then fail "the host reached a macvlan child over its parent"; fi
ip addr del 10.77.0.254/24 dev lan0

step "drift: a macvlan's address removed, its MTU changed; apply repairs both"
ip netns exec mv-db ip addr flush dev eth0
ip netns exec mv-web ip link set eth0 mtu 1400
expect_rc 2 "$CNM" plan --detailed-exitcode "$WORK/mv.yaml"
grep -q 'addresses: (none) → 10.77.0.20/24' "$WORK/out" || { cat "$WORK/out"; fail "address drift not planned"; }
grep -q 'mtu: 1400 → 1500' "$WORK/out" || { cat "$WORK/out"; fail "MTU drift not planned"; }
expect_rc 0 "$CNM" apply "$WORK/mv.yaml"
converged "$WORK/mv.yaml"
reach web db
reach db outside

step "show round trip"
"$CNM" show --topology mv >"$WORK/shown.yaml"
grep -q 'driver: macvlan' "$WORK/shown.yaml" && grep -q 'parent: lan0' "$WORK/shown.yaml" \
  || { cat "$WORK/shown.yaml"; fail "show lost the macvlan network"; }
converged "$WORK/shown.yaml"

step "private mode: replaced in place, the sandboxes no longer reach each other"
sed 's/options: { parent: lan0 }/options: { parent: lan0, macvlan_mode: private }/' "$WORK/mv.yaml" >"$WORK/private.yaml"
expect_rc 0 "$CNM" apply "$WORK/private.yaml"
grep -q 'mode bridge → macvlan parent lan0 mode private' "$WORK/out" || { cat "$WORK/out"; fail "mode change not shown as a replace"; }
converged "$WORK/private.yaml"
unreachable web db
reach web outside

step "passthru: one endpoint takes the parent over; the parent's MAC is never set"
expect_rc 0 "$CNM" destroy "$WORK/private.yaml"
# The MAC of a link: mac_of [-n NETNS] IFACE
mac_of() { ip "${@:1:$#-1}" -o link show dev "${!#}" | awk '{for (i = 1; i < NF; i++) if ($i == "link/ether") print $(i + 1)}'; }
parent_mac=$(mac_of lan0)
cat >"$WORK/passthru.yaml" <<'YAML'
version: 1
name: mv
networks:
  lan: { driver: macvlan, subnet: 10.77.0.0/24, options: { parent: lan0, macvlan_mode: passthru } }
sandboxes:
  web: { dns: { servers: [10.77.0.1] } }
endpoints:
  web-lan: { network: lan, sandbox: web }
YAML
expect_rc 0 "$CNM" apply "$WORK/passthru.yaml"
converged "$WORK/passthru.yaml"
[ "$(mac_of -n mv-web eth0)" = "$parent_mac" ] || fail "the passthru interface does not have the parent's MAC"
[ "$(mac_of lan0)" = "$parent_mac" ] || fail "the parent's MAC changed"
reach web outside
expect_rc 0 "$CNM" destroy "$WORK/passthru.yaml"
expect_rc 0 "$CNM" apply "$WORK/private.yaml"

step "bad options are located errors"
sed 's/options: { parent: lan0 }/options: { parent: lan0, macvlan_mode: l2 }/' "$T" >"$WORK/bad.yaml"
expect_rc 1 "$CNM" validate "$WORK/bad.yaml"
grep -q 'bad.yaml:13:[0-9]*: network lan: options.macvlan_mode must be one of bridge, private, vepa, passthru' "$WORK/err" \
  || { cat "$WORK/err"; fail "bad macvlan_mode not located"; }

step "destroy removes the sandboxes and leaves the parent untouched"
expect_rc 0 "$CNM" destroy "$WORK/private.yaml"
[ -z "$(ip netns list | grep '^mv-')" ] || fail "sandboxes left behind"
parent_after=$(ip -d -o link show lan0 | sed -E 's/ (state|qlen) [^ ]+//g'; ip -o -4 addr show dev lan0)
[ "$parent_before" = "$parent_after" ] || fail "destroy changed the parent:
$parent_before
---
$parent_after"
ip -n outside link show lan0-peer >/dev/null || fail "the uplink is gone"

echo PASS
