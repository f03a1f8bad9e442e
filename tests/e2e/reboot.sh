#!/usr/bin/env bash
# What must survive a reboot lives in /var/lib/cnm: after the kernel loses
# every object (namespaces, links, tables) and /run is emptied, the next
# apply gives the sandboxes back the subnets, addresses and ethN they had,
# not a fresh lowest-free numbering.
source "$(dirname "$0")/lib.sh"
T="$WORK/r.yaml"

step "apply, then drop a network and an endpoint: the rest keep their numbers"
cat >"$T" <<'YAML'
version: 1
name: r
networks:
  first: {}
  second: {}
sandboxes: { a: {}, b: {}, c: {} }
endpoints:
  a-second: { network: second, sandbox: a }
  b-first: { network: first, sandbox: b }
  b-second: { network: second, sandbox: b }
  c-second: { network: second, sandbox: c }
YAML
expect_rc 0 "$CNM" apply "$T"
sed -i '/^  first: {}$/d; /^  a-second:/d; /^  b-first:/d' "$T"
expect_rc 0 "$CNM" apply "$T"
converged "$T"
grep -q 'inet 172.18.0.3/16' <<<"$(ip netns exec r-b ip -o addr show dev eth1)" || fail "b-second is not at 172.18.0.3 on eth1"
grep -q 'inet 172.18.0.4/16' <<<"$(ip netns exec r-c ip -o addr show dev eth0)" || fail "c-second is not at 172.18.0.4"

step "reboot: the kernel and /run forget everything; /var/lib/cnm and /etc/netns stay"
for ns in $(ip netns list | awk '{print $1}'); do ip netns del "$ns"; done
for l in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^(br|ve)-'); do ip link del "$l" 2>/dev/null || true; done
nft delete table inet cnm-r
rm -rf /run/cnm/*
[ -z "$(ip netns list)" ] || fail "namespaces left"

step "the next plan recreates everything with the same subnet, addresses and names"
expect_rc 2 "$CNM" plan --detailed-exitcode "$T"
grep -q 'network second (bridge br-r-second): 172.18.0.1/16' "$WORK/out" || { cat "$WORK/out"; fail "the subnet of second was not kept"; }
grep -q 'endpoint b-second (b eth1 ↔ [^)]*): 172.18.0.3/16' "$WORK/out" || { cat "$WORK/out"; fail "b-second's address or eth1 was not kept"; }
grep -q 'endpoint c-second (c eth0 ↔ [^)]*): 172.18.0.4/16' "$WORK/out" || { cat "$WORK/out"; fail "c-second's address was not kept"; }
expect_rc 0 "$CNM" apply "$T"
converged "$T"
reach b c
reach c b

echo PASS
