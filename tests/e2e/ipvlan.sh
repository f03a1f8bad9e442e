#!/usr/bin/env bash
# ipvlan end to end. Veth pairs stand in for the uplinks (no dummy here):
# lan0 and lan1 are the parents on the host, their peers sit in an
# "outside" namespace that plays the LAN. On a kernel without ipvlan (this
# project's CI machines) the check is that plan refuses before any change,
# located, naming the module; the traffic part then says it skipped, and
# why (no privilege brings a module: it skips even with
# CNM_REQUIRE_PRIVILEGED=1).
source "$(dirname "$0")/lib.sh"
T="$EXAMPLES/ipvlan.yaml"

step "the uplinks: lan0 and lan1 here, their peers in the outside namespace"
ip netns add outside
ip -n outside link set lo up
for i in 0 1; do
  ip link add "lan$i" type veth peer name "lan$i-peer"
  ip link set "lan$i-peer" netns outside
  ip link set "lan$i" up
  ip -n outside link set "lan$i-peer" up
done
ip -n outside addr add 10.78.0.1/24 dev lan0-peer

if ! ip link add probe-ipv link lan0 type ipvlan mode l2 2>"$WORK/probe"; then
  step "this kernel has no ipvlan: plan refuses, located, before any change"
  before=$(snapshot)
  expect_rc 1 "$CNM" plan "$T"
  grep -Eq "ipvlan.yaml:(12:13: network lan|16:13: network routed): this kernel cannot create ipvlan links .*modprobe ipvlan" "$WORK/err" \
    || { cat "$WORK/err"; fail "the missing kernel support is not reported at the network's driver"; }
  expect_rc 1 "$CNM" apply "$T"
  grep -q "cannot create ipvlan links" "$WORK/err" || { cat "$WORK/err"; fail "apply: no reason given"; }
  [ "$before" = "$(snapshot)" ] || fail "a refused apply changed the host"
  [ ! -e /var/lib/cnm/topologies/ipv ] || fail "a refused apply left records"
  msg="SKIPPED: ipvlan traffic: this kernel cannot create ipvlan links ($(tr -d '\n' <"$WORK/probe")); the refusal was checked"
  echo "$msg"
  echo PASS
  exit 0
fi
ip link del probe-ipv

step "apply; plan after apply is empty"
expect_rc 0 "$CNM" apply "$T"
converged "$T"
ip netns exec ipv-web ip -d link show eth0 | grep -q 'ipvlan  *mode l2 bridge' || fail "web's eth0 is not an l2 bridge ipvlan"
ip netns exec ipv-db ip -d link show eth0 | grep -q 'ipvlan  *mode l3 ' || fail "db's eth0 is not an l3 ipvlan"
[ "$(ip netns exec ipv-web cat /sys/class/net/eth0/address)" = "$(cat /sys/class/net/lan0/address)" ] \
  || fail "web's eth0 does not share lan0's MAC"
ip netns exec ipv-db ip route show default | grep -q '^default dev eth0' || fail "db (l3) has no default route out of eth0"
ip netns exec ipv-web ip route show default | grep -q '^default via 10.78.0.1 dev eth0' || fail "web (l2) does not route via 10.78.0.1"

step "l2: the sandbox and the outside reach each other over lan0"
"$CNM" exec web -- ping -c1 -W2 -q 10.78.0.1 >/dev/null || fail "web cannot reach the outside"
ip netns exec outside ping -c1 -W2 -q 10.78.0.2 >/dev/null || fail "the outside cannot reach web"

step "drift: an address flushed is repaired"
ip netns exec ipv-web ip addr flush dev eth0
expect_rc 2 "$CNM" plan --detailed-exitcode "$T"
expect_rc 0 "$CNM" apply "$T"
converged "$T"

step "destroy leaves the parents as they were"
expect_rc 0 "$CNM" destroy "$T"
[ -z "$(ip netns list | grep '^ipv-')" ] || fail "sandbox namespaces left"
ip link show lan0 >/dev/null || fail "destroy removed the parent"

echo PASS
