#!/usr/bin/env bash
# Added time per container start on a cnm network against Docker's own
# bridge driver: `docker run -d` of a busybox container, 20 each, timed as
# a whole command (p50 and p99 in ms), on a private host with a real
# dockerd; then the calls Docker made to the plugin for one container's
# life, in order.
#   bench/docker-plugin.sh [CNM]       (default target/release/cnm)
set -euo pipefail
cd "$(dirname "$0")/.."
CNM=$(realpath "${1:-target/release/cnm}")
N=${BENCH_N:-20}
tests/support/private-host.sh env CNM="$CNM" N="$N" bash -c '
  set -euo pipefail
  source tests/e2e/lib.sh
  source tests/support/docker.sh
  export PATH="/usr/bin:$PATH"
  trap "kill \$P 2>/dev/null; docker_down" EXIT
  "$CNM" docker-plugin -v >"$WORK/plugin.log" 2>&1 & P=$!
  for _ in $(seq 50); do [ -S /run/docker/plugins/cnm.sock ] && break; sleep 0.1; done
  docker_up
  docker network create -d cnm --subnet 10.190.0.0/20 cnmnet >/dev/null
  docker network create -d bridge --subnet 10.191.0.0/20 brnet >/dev/null
  time_runs() { # NETWORK
    for i in $(seq 1 "$N"); do
      t0=$(date +%s%N)
      docker run -d --network "$1" bb:local sleep 600 >/dev/null
      echo $(( ($(date +%s%N) - t0) / 1000000 ))
    done
  }
  pct() { sort -n | awk -v p="$1" "{a[NR]=\$1} END {print a[int((NR-1)*p/100)+1]}"; }
  time_runs brnet >"$WORK/br"; time_runs cnmnet >"$WORK/cnm"
  b50=$(pct 50 <"$WORK/br"); c50=$(pct 50 <"$WORK/cnm")
  echo "| network | docker run p50 | p99 |"
  echo "|---|---|---|"
  echo "| Docker bridge | $b50 ms | $(pct 99 <"$WORK/br") ms |"
  echo "| cnm | $c50 ms | $(pct 99 <"$WORK/cnm") ms |"
  echo "added per container start (p50): $((c50 - b50)) ms"
  : >"$WORK/plugin.log"
  id=$(docker run -d --network cnmnet bb:local sleep 600)
  sleep 1
  docker rm -f "$id" >/dev/null
  echo "calls for one container (run, then rm -f):"
  grep -ao "method=\"[A-Za-z.]*\"" "$WORK/plugin.log" | tr -d "\"" | sed "s/method=/  /"
'
