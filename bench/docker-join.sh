#!/usr/bin/env bash
# Latency of the Docker plugin's Join (libnetwork's remote-driver call that
# makes a container's interface), called on cnm's socket as dockerd calls
# it, on a private host: a network, then N endpoints each created and
# joined (timed: the Join call alone, as the client sees it), all kept, so
# the last Join has N-1 others beside it. Prints p50 and p99 in ms.
#
#   bench/docker-join.sh [--smoke] [CNM]     N = 200 (smoke: 5)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${BENCH_N:-200}
if [ "${1:-}" = "--smoke" ]; then N=5; shift; fi
CNM=$(realpath "${1:-target/release/cnm}")
tests/support/private-host.sh env CNM="$CNM" N="$N" bash -c '
  set -euo pipefail
  S=/run/docker/plugins/cnm.sock
  "$CNM" docker-plugin >/tmp/plugin.log 2>&1 & P=$!
  trap "kill \$P 2>/dev/null || true" EXIT
  for _ in $(seq 100); do [ -S "$S" ] && break; sleep 0.05; done
  call() { # METHOD JSON: fails on an error reply
    local out
    out=$(curl -s --unix-socket "$S" -X POST -d "$2" "http://plugin/NetworkDriver.$1")
    case "$out" in *"\"Err\""*) echo "docker-join: $1: $out" >&2; exit 1 ;; esac
  }
  NET=$(printf "%012x%052d" 1 0)
  call CreateNetwork "{\"NetworkID\":\"$NET\",\"Options\":{},\"IPv4Data\":[{\"AddressSpace\":\"\",\"Pool\":\"10.192.0.0/16\",\"Gateway\":\"10.192.0.1/16\"}],\"IPv6Data\":[]}"
  for i in $(seq 1 "$N"); do
    EP=$(printf "%012x%052d" $((1000 + i)) 0)
    addr="10.192.$((i / 250)).$((i % 250 + 2))/16"
    call CreateEndpoint "{\"NetworkID\":\"$NET\",\"EndpointID\":\"$EP\",\"Interface\":{\"Address\":\"$addr\",\"AddressIPv6\":\"\",\"MacAddress\":\"\"},\"Options\":{}}"
    t0=$(date +%s%N)
    call Join "{\"NetworkID\":\"$NET\",\"EndpointID\":\"$EP\",\"SandboxKey\":\"/var/run/docker/netns/x$i\",\"Options\":{}}"
    echo $(( $(date +%s%N) - t0 ))
  done >/tmp/join.ns
  sort -n /tmp/join.ns | awk "{a[NR]=\$1} END {printf \"%.1f %.1f\n\", a[int((NR+1)/2)]/1e6, a[int((NR-1)*0.99)+1]/1e6}"
' | tail -1 | { read -r p50 p99; echo "| Docker Join, $N endpoints | $p50 | $p99 |"; }
