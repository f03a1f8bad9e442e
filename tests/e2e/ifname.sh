#!/usr/bin/env bash
# `ifname:` on an endpoint: the interface in the sandbox has that name,
# traffic and names work through it, the sandbox's other endpoint still
# takes eth0, a rename replaces the endpoint, and a borrowed namespace's
# own interface of that name is a plan error that changes nothing.
source "$(dirname "$0")/lib.sh"
T="$WORK/if.yaml"
write() {
  cat >"$T" <<YAML
version: 1
name: ifn
networks:
  front: { subnet: 10.41.0.0/24 }
  back: { subnet: 10.42.0.0/24 }
sandboxes:
  web: {}
  db: {}
endpoints:
  web-front: { network: front, sandbox: web }
  web-back: { network: back, sandbox: web, ifname: $1 }
  db-back: { network: back, sandbox: db }
YAML
}

step "apply: web's back interface is data0, its front one eth0"
write data0
expect_rc 0 "$CNM" apply "$T"
converged "$T"
ip netns exec ifn-web ip -o -4 addr show dev data0 | grep -q 'inet 10.42.0.3/24' || fail "no data0 with web's back address"
ip netns exec ifn-web ip -o -4 addr show dev eth0 | grep -q 'inet 10.41.0.2/24' || fail "web's front endpoint is not eth0"
reach web db
reach db web
"$CNM" show --topology ifn | grep -q 'ifname: data0' || fail "show does not keep the name: $("$CNM" show --topology ifn)"

step "a rename replaces the endpoint, and traffic follows"
write uplink1
expect_rc 2 "$CNM" plan --detailed-exitcode "$T"
grep -q 'web-back.*its interface name changed' "$WORK/out" || fail "the plan does not say why: $(cat "$WORK/out")"
expect_rc 0 "$CNM" apply "$T"
converged "$T"
ip netns exec ifn-web ip link show uplink1 >/dev/null || fail "no uplink1"
if ip netns exec ifn-web ip link show data0 >/dev/null 2>&1; then fail "data0 is still there"; fi
reach db web

step "a borrowed namespace's own interface of that name: a plan error, nothing changed"
expect_rc 0 "$CNM" destroy "$T"
ip netns add box
ip -n box link add uplink1 type veth peer name other0
sed -i 's#^  web: {}#  web: { netns: /run/netns/box }#' "$T"
before=$(snapshot)
expect_rc 1 "$CNM" plan "$T"
grep -q 'uplink1' "$WORK/err" || fail "the clash is not named: $(cat "$WORK/err")"
[ "$before" = "$(snapshot)" ] || fail "a refused plan changed the host"

echo PASS
