#!/usr/bin/env bash
# CNI ADD and DEL latency: cnm as a CNI plugin beside the reference bridge
# plugin (with host-local IPAM; Debian's containernetworking-plugins), each
# on a fresh private host, N attachments added one after another, then
# deleted. Prints p50 and p99 of each, in milliseconds, as a Markdown table.
#
#   bench/cni.sh [--smoke] [CNM]     full: N = 10, 100, 1000; smoke: N = 10
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="10 100 1000"
if [ "${1:-}" = "--smoke" ]; then SIZES="10"; shift; fi
SIZES=${BENCH_SIZES:-$SIZES}
CNM=$(realpath "${1:-target/release/cnm}")
PH=tests/support/private-host.sh
[ -x /usr/lib/cni/bridge ] || { echo "bench/cni.sh: needs containernetworking-plugins" >&2; exit 1; }

# One run on a private host: N ADDs then N DELs of plugin $1 (cnm|bridge);
# prints one latency in ns per line, "add NS" or "del NS".
run_one() {
  local plugin=$1 n=$2
  # shellcheck disable=SC2016
  "$PH" env CNM="$CNM" PLUGIN="$plugin" N="$n" bash -c '
    set -euo pipefail
    mkdir -p /tmp/cnibin; ln -sf "$CNM" /tmp/cnibin/cnm
    export CNI_PATH=/tmp/cnibin:/usr/lib/cni
    if [ "$PLUGIN" = cnm ]; then
      bin=/tmp/cnibin/cnm
      conf="{\"cniVersion\":\"1.0.0\",\"name\":\"bench\",\"type\":\"cnm\",\"network\":{\"subnet\":\"10.170.0.0/20\"}}"
    else
      bin=/usr/lib/cni/bridge
      conf="{\"cniVersion\":\"1.0.0\",\"name\":\"bench\",\"type\":\"bridge\",\"bridge\":\"cni-bench\",\"isGateway\":true,\"ipam\":{\"type\":\"host-local\",\"subnet\":\"10.170.0.0/20\"}}"
    fi
    for i in $(seq 1 "$N"); do ip netns add "c$i"; done
    call() { # COMMAND i
      local t0 t1
      t0=$(date +%s%N)
      echo "$conf" | CNI_COMMAND=$1 CNI_CONTAINERID="bench$2" CNI_NETNS="/run/netns/c$2" CNI_IFNAME=eth0 "$bin" >/dev/null 2>/tmp/err \
        || { cat /tmp/err >&2; exit 1; }
      t1=$(date +%s%N)
      echo "$(echo "$1" | tr A-Z a-z) $((t1 - t0))"
    }
    for i in $(seq 1 "$N"); do call ADD "$i"; done
    for i in $(seq 1 "$N"); do call DEL "$i"; done'
}

pct() { # KIND P < lines
  awk -v k="$1" -v p="$2" '$1 == k {print $2}' | sort -n |
    awk -v p="$p" '{a[NR] = $1} END {i = int((NR - 1) * p / 100) + 1; printf "%.1f", a[i] / 1e6}'
}

echo "| N | cnm ADD p50 | cnm ADD p99 | bridge ADD p50 | bridge ADD p99 | cnm DEL p50 | cnm DEL p99 | bridge DEL p50 | bridge DEL p99 |"
echo "|---|---|---|---|---|---|---|---|---|"
for n in $SIZES; do
  run_one cnm "$n" >/tmp/cni-bench-cnm
  run_one bridge "$n" >/tmp/cni-bench-bridge
  row="| $n"
  for kind in add del; do
    for who in cnm bridge; do
      for p in 50 99; do row="$row | $(pct "$kind" "$p" </tmp/cni-bench-$who)"; done
    done
  done
  echo "$row |"
done
echo "(milliseconds; each call a process, as a runtime runs it)"
