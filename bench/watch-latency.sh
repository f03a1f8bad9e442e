#!/usr/bin/env bash
# Latency of cnm watch, measured on a private host:
#   file change → converged (new address visible in the sandbox), and
#   drift (veth deleted by hand) → repaired (veth back, address up).
# Usage: tests/support/private-host.sh bench/watch-latency.sh [TRIALS] [CNM]
set -euo pipefail
N=${1:-20}
CNM=${2:-target/release/cnm}
EX=examples/topologies/quickstart.yaml
D=$(mktemp -d)
cp "$EX" "$D/t.yaml"
"$CNM" watch "$D/t.yaml" 2>"$D/log" & W=$!
trap 'kill $W 2>/dev/null; grep -E "WARN|ERROR" "$D/log" | head -5 >&2 || true; rm -rf "$D"' EXIT
now() { date +%s%N; }
wait_for() { while ! "$@" >/dev/null 2>&1; do :; done; }
has_addr() { ip netns exec quick-alpha ip -o -4 addr show eth0 2>/dev/null | grep "inet $1/" >/dev/null; }
# Files are the last kernel-side step of an apply: alpha's hosts file with
# its new address means the whole change is in (with the embedded resolver,
# a hosts file holds only the sandbox's own names).
file_done() { grep "^$1	alpha" /etc/netns/quick-alpha/hosts >/dev/null 2>&1; }
# After a veth is recreated, its default route is the last repair.
route_back() { has_addr "$1" && ip netns exec quick-alpha ip route 2>/dev/null | grep default >/dev/null; }
# Between trials (not timed): the watcher has finished, verify included.
quiet() { wait_for "$CNM" plan --detailed-exitcode "$D/t.yaml"; sleep 0.2; }
wait_for has_addr 10.88.0.2

stats() { sort -n | awk '{a[NR]=$1} END {printf "median %.1f ms, max %.1f ms (n=%d)\n", a[int((NR+1)/2)]/1e6, a[NR]/1e6, NR}'; }

for i in $(seq 1 "$N"); do
  net=$((100 + i % 100))
  sed "s/10.88.0.0\/24/10.$net.0.0\/24/" "$EX" >"$D/new.yaml"
  t0=$(now); mv "$D/new.yaml" "$D/t.yaml"
  wait_for file_done "10.$net.0.2"
  echo $(( $(now) - t0 ))
done | stats | sed 's/^/file change → converged: /'

for i in $(seq 1 "$N"); do
  quiet
  v=$(ip -o link | grep -o 've-[0-9a-f]*' | head -1)
  addr=$(ip netns exec quick-alpha ip -o -4 addr show eth0 | awk '{print $4}' | cut -d/ -f1)
  t0=$(now); ip link del "$v"
  sleep 0.001
  wait_for route_back "$addr"
  echo $(( $(now) - t0 ))
done | stats | sed 's/^/drift (veth deleted) → repaired: /'

# Drift of the kinds no link event reports: an nftables table flushed, a
# hosts file edited, a sysctl turned off (polled once a second).
masq_back() { nft list table inet cnm-quick 2>/dev/null | grep masquerade >/dev/null; }
for i in $(seq 1 "$N"); do
  quiet; t0=$(now); nft flush table inet cnm-quick
  wait_for masq_back
  echo $(( $(now) - t0 ))
done | stats | sed 's/^/drift (nft table flushed) → repaired: /'

hosts_back() { ! grep evil /etc/netns/quick-alpha/hosts >/dev/null 2>&1 && grep localhost /etc/netns/quick-alpha/hosts >/dev/null 2>&1; }
for i in $(seq 1 "$N"); do
  quiet; t0=$(now); echo "10.9.9.9 evil" >>/etc/netns/quick-alpha/hosts
  wait_for hosts_back
  echo $(( $(now) - t0 ))
done | stats | sed 's/^/drift (hosts file edited) → repaired: /'

fwd_back() { [ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ]; }
for i in $(seq 1 "$((N < 5 ? N : 5))"); do
  quiet; t0=$(now); echo 0 >/proc/sys/net/ipv4/ip_forward
  wait_for fwd_back
  echo $(( $(now) - t0 ))
done | stats | sed 's/^/drift (sysctl turned off) → repaired: /'
