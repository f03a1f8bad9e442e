#!/usr/bin/env bash
# Cost of an overlay network's entries on one host: host h1 has one sandbox,
# host h2 (never started) has N, so h1 gets N+1 FDB entries (N MACs, one flood) and N neighbour entries.
# Runs on a private host; prints apply, no-op plan and add-one times.
#   tests/support/private-host.sh bench/overlay.sh [CNM] [N...]
set -euo pipefail
CNM=$(realpath "${1:-target/release/cnm}"); shift || true
SIZES=${*:-100 1000}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
ip link add ul0 type veth peer name ul1
ip addr add 192.168.100.11/24 dev ul0
ip link set ul0 up; ip link set ul1 up

topology() { # N
  printf 'version: 1\nname: ovb\nhosts:\n  h1: { address: 192.168.100.11 }\n  h2: { address: 192.168.100.12 }\n'
  printf 'networks:\n  ov: { driver: overlay, subnet: 10.64.0.0/16 }\nsandboxes:\n  local: { host: h1 }\n'
  for i in $(seq 1 "$1"); do printf '  r%s: { host: h2 }\n' "$i"; done
  printf 'endpoints:\n  local-ov: { network: ov, sandbox: local }\n'
  for i in $(seq 1 "$1"); do printf '  r%s-ov: { network: ov, sandbox: r%s }\n' "$i" "$i"; done
}
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(((e - s) / 1000000)); }

echo "| remote endpoints | entries on h1 | apply (ms) | no-op plan (ms) | add one remote (ms) | destroy (ms) |"
echo "|---|---|---|---|---|---|"
for n in $SIZES; do
  topology "$n" >"$W/t.yaml"
  topology "$((n + 1))" >"$W/t1.yaml"
  a=$(ms "$CNM" apply "$W/t.yaml" --host h1)
  p=$(ms "$CNM" plan "$W/t.yaml" --host h1)
  entries=$(( $(bridge fdb show dev vx-ovb-ov | grep -c self) + $(ip neigh show dev vx-ovb-ov | wc -l) ))
  one=$(ms "$CNM" apply "$W/t1.yaml" --host h1)
  d=$(ms "$CNM" destroy "$W/t1.yaml")
  echo "| $n | $entries | $a | $p | $one | $d |"
done
