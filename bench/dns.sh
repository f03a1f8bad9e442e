#!/usr/bin/env bash
# Embedded DNS: queries per second and p50/p99 latency of cnm's resolver
# (127.0.0.11 inside each sandbox) against aardvark-dns (Podman's, on the
# bridge's gateway address) on the same topology: one bridge network
# 10.96.0.0/16, sandboxes s1..sN at the same addresses, the same query files,
# the same upstream. Then each server's RSS with many sandboxes. Each server
# runs on a fresh private host (its own network, mount and PID namespaces;
# every process dies with it). Prints a Markdown table; a full run of both
# servers also writes it to bench/results/dns.md.
#
#   bench/dns.sh                  N = 2 for qps/latency, 10 s a run, RSS at 1000
#   bench/dns.sh --sandboxes N --duration S --rss-sandboxes M
#   bench/dns.sh --only cnm|aardvark      one server (plus the upstream floor)
#   bench/dns.sh --smoke          2 sandboxes, 1 s, RSS at 10: checks the
#                                 harness only; skips (exit 0, loudly) when
#                                 dnsperf or aardvark-dns is not installed
#   CNM=target/debug/cnm bench/dns.sh     (default target/release/cnm)
#
# Needs root, iproute2, nftables, util-linux (unshare, taskset) and the
# Debian packages dnsperf, aardvark-dns, dnsmasq-base. Checked on Debian 12
# (2026-11-30): dnsperf 2.10.0, aardvark-dns 1.4.0, dnsmasq 2.90.
# - dnsperf 2.10 has no latency histogram (-O takes only num-queries-per-conn,
#   suppress, doh-*; -S prints qps only). -v prints one line per response,
#   "> NOERROR s2 A 0.000120" (rcode, name, type, latency in s; T: timed
#   out), and costs no throughput here (51k qps with it, 46k without), so
#   p50/p99 come from the same run as qps: closed loop, -c 1 client, -q 100
#   queries in flight (dnsperf's default), i.e. latency under full load
#   (mostly queueing: about 100 / qps). A second run offers RATE qps (-Q;
#   default 5000, below both servers' capacity): latency at light load.
#   DNSPERF_OPTS adds options to both runs.
# - aardvark-dns 1.4.0 (/usr/lib/podman/aardvark-dns): `--config DIR -p 53
#   run` daemonizes (pid in DIR/aardvark.pid) and listens on UDP only, on the
#   gateway address of each network file in DIR. A network file: first line
#   the gateway address(es), comma separated; then one line per container,
#   "ID IPV4S IPV6S NAMES" (lists comma separated, an empty one leaves two
#   spaces). It answers only sources on a network of theirs, TTL 86400, and
#   forwards the rest to /etc/resolv.conf's servers (read at start).
# - The upstream is dnsmasq in its own namespace on 198.51.100.53 (a veth
#   from the private host), answering every *.example.test with 192.0.2.1;
#   the private host's /etc/resolv.conf names it (a bind mount).
#   aardvark-dns forwards from the host's namespace over that veth; cnm's
#   resolver, as Docker's, from inside the asking sandbox (through its
#   bridge and the host's forwarding).
# - cnm's resolver is the process `cnm resolver` that apply starts; its pid
#   is "pid" in /run/cnm/resolver/identity (JSON).
# - On a machine with 2+ CPUs the server under test is pinned to CPU 0 and
#   dnsperf and dnsmasq to the others (DNS_BENCH_PIN=0: no pinning), so both
#   servers get one CPU and the load generator never competes with them.
set -euo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$0")/.."
AARDVARK=${AARDVARK:-$(command -v aardvark-dns || echo /usr/lib/podman/aardvark-dns)}
UP=198.51.100.53           # the upstream (dnsmasq)
GW=10.96.0.1               # the bridge's gateway
TOPO=dnsb                  # topology name: netns dnsb-sI, bridge br-dnsb-lan
BR=br-$TOPO-lan
ST=(/run/netns /run/cnm /etc/netns /var/lib/cnm /run/containers /run/docker /etc/docker /usr/lib/docker /run/systemd)
addr() { echo "10.96.$((($1 + 1) / 256)).$((($1 + 1) % 256))"; }
log() { echo "dns.sh: $*" >&2; }

# ---------------------------------------------------------------------------
# Inside a private host: `bench/dns.sh --inside PHASE ...` (run by ph below).

if [ "${1:-}" = "--inside" ]; then
  shift
  PHASE=$1 N=$2 W=$3
  DUR=${DUR:-10} RATE=${RATE:-5000}
  for d in "${ST[@]}"; do mount -t tmpfs tmpfs "$d"; done
  ip link set lo up
  SRV_CPU="" LOAD_CPU=""
  if [ "${DNS_BENCH_PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ]; then SRV_CPU=0 LOAD_CPU=1-$(($(nproc) - 1)); fi
  pin() { [ -z "$SRV_CPU" ] || taskset -a -p -c "$SRV_CPU" "$1" >/dev/null; }
  in_ns() { local ns=$1; shift; if [ -n "$ns" ]; then ip netns exec "$ns" "$@"; else "$@"; fi; }

  # The upstream, and this host's resolv.conf naming it.
  ip netns add dnsb-upstream
  ip link add up0 type veth peer name eth0 netns dnsb-upstream
  ip addr add 198.51.100.1/24 dev up0
  ip link set up0 up
  ip -n dnsb-upstream link set lo up
  ip -n dnsb-upstream link set eth0 up
  ip -n dnsb-upstream addr add "$UP/24" dev eth0
  ip netns exec dnsb-upstream ${LOAD_CPU:+taskset -c $LOAD_CPU} dnsmasq --conf-file=/dev/null --no-daemon --pid-file= \
    --no-resolv --no-hosts --address=/example.test/192.0.2.1 \
    --listen-address="$UP" --bind-interfaces --log-facility=- 2>"$W/dnsmasq.log" &
  printf 'nameserver %s\n' "$UP" >"$W/resolv.conf"
  rc=$(readlink -f /etc/resolv.conf)
  case "$rc" in /run/systemd/*) mkdir -p "$(dirname "$rc")"; touch "$rc" ;; esac
  mount --bind "$W/resolv.conf" "$rc"

  # ok NETNS SERVER QFILE: one pass over QFILE, every query answered NOERROR.
  ok() {
    local out
    out=$(in_ns "$1" dnsperf -s "$2" -d "$3" -n 1 -t 1 2>&1) || return 1
    grep -q 'Queries lost: *0 ' <<<"$out" && grep -q 'Response codes: *NOERROR [0-9]* (100.00%)' <<<"$out"
  }
  wait_ok() { # NETNS SERVER QFILE SECONDS
    local end=$((SECONDS + $4))
    until ok "$1" "$2" "$3"; do
      [ "$SECONDS" -lt "$end" ] || { log "$PHASE: $2 does not answer $3 from ${1:-the host}"; return 1; }
      sleep 0.2
    done
  }
  # perf OUT NETNS SERVER QFILE [DNSPERF ARGS]: one dnsperf run of $DUR s;
  # prints 5 lines: qps, p50, p99 (ms), queries lost, response codes.
  perf() {
    local out=$1 ns=$2 srv=$3 q=$4
    shift 4
    # shellcheck disable=SC2086 # word splitting intended
    in_ns "$ns" ${LOAD_CPU:+taskset -c $LOAD_CPU} dnsperf -s "$srv" -d "$q" -l "$DUR" -t 2 -v \
      ${DNSPERF_OPTS:-} "$@" >"$out" 2>&1 || { log "dnsperf failed:"; tail -5 "$out" >&2; return 1; }
    awk '/Queries per second:/ {printf "%.0f\n", $4}' "$out"
    awk '/^> / && $2 != "T" && $2 != "I" {print $NF}' "$out" | sort -g |
      awk '{a[NR] = $1} END { if (NR == 0) { print "-\n-"; exit }
        i = int(NR * 0.5); if (i < NR * 0.5) i++; if (i < 1) i = 1
        j = int(NR * 0.99); if (j < NR * 0.99) j++; if (j < 1) j = 1
        printf "%.3f\n%.3f\n", a[i] * 1000, a[j] * 1000 }'
    awk '/Queries lost:/ {print $3}' "$out"
    sed -n 's/^ *Response codes: *//p' "$out" | sed 's/ [0-9]* (\([0-9.]*%\))/ \1/g'
    echo
  }
  # measure LABEL KIND NETNS SERVER QFILE [PID]: flat out (-q 100 in flight,
  # dnsperf's default), then at $RATE qps offered; one RESULT line, with
  # the server's RSS after both.
  measure() {
    local rss=- f=() r=()
    perf "$W/perf" "$3" "$4" "$5" >"$W/full" && perf "$W/perf" "$3" "$4" "$5" -Q "$RATE" >"$W/rate" || return 1
    mapfile -t f <"$W/full"
    mapfile -t r <"$W/rate"
    [ -z "${6:-}" ] || rss=$(rss "$6")
    printf 'RESULT\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s, %s lost\n' "$1" "$2" "${f[0]}" "${f[1]}" "${f[2]}" \
      "${r[1]}" "${r[2]}" "$rss" "${f[4]:-no answers}" "$((f[3] + r[3]))"
  }
  rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
  # Query every sandbox's server once (each answers, and each has served
  # before its RSS is read); prints how many answered. Sandboxes that miss
  # get a second try 5 s later: past 512 neighbours (gc_thresh2, a global
  # sysctl left alone) the host's ARP table refuses entries younger than
  # 5 s, so a server that answers from the host (aardvark) loses some.
  all_sandboxes() { # SERVER
    local i n=0 miss=()
    for i in $(seq 1 "$N"); do
      if ok "$TOPO-s$i" "$1" "$W/one.q"; then n=$((n + 1)); else miss+=("$i"); fi
    done
    [ "${#miss[@]}" = 0 ] || { log "$PHASE: ${#miss[@]} sandboxes got no answer; trying them again"; sleep 5; }
    for i in "${miss[@]}"; do
      if wait_ok "$TOPO-s$i" "$1" "$W/one.q" 5; then n=$((n + 1)); fi
    done
    echo "$n"
  }
  local_names() { for i in $(seq 1 "$N"); do echo "s$i A"; done >"$W/local.q"; }
  local_names
  echo "s1 A" >"$W/one.q"
  wait_ok "" "$UP" "$W/fwd.q" 10

  case "$PHASE" in
  upstream)
    measure "upstream (dnsmasq)" "forwarded names, queried directly" "" "$UP" "$W/fwd.q"
    ;;
  cnm | cnm-rss)
    {
      printf 'version: 1\nname: %s\nnetworks:\n  lan: { subnet: 10.96.0.0/16 }\nsandboxes:\n' "$TOPO"
      for i in $(seq 1 "$N"); do printf '  s%s: {}\n' "$i"; done
      printf 'endpoints:\n'
      for i in $(seq 1 "$N"); do printf '  e%s: { network: lan, sandbox: s%s, address: %s }\n' "$i" "$i" "$(addr "$i")"; done
    } >"$W/t.yaml"
    "$CNM" apply "$W/t.yaml" >"$W/apply.log" 2>&1 || { log "cnm apply failed:"; tail -20 "$W/apply.log" >&2; exit 1; }
    # The resolver's pid: /run/cnm/resolver/identity (JSON with "pid", or a
    # pid first), checked against /proc; else the process `cnm resolver`.
    pid=""
    for _ in $(seq 1 100); do
      f=/run/cnm/resolver/identity
      if [ -r "$f" ]; then
        pid=$(grep -o '"pid" *: *[0-9]*' "$f" | grep -o '[0-9]*$' || grep -o '^[0-9]*' "$f" | head -1 || true)
        tr '\0' ' ' <"/proc/${pid:-0}/cmdline" 2>/dev/null | grep -q resolver || pid=""
      fi
      [ -n "$pid" ] || pid=$(pgrep -o -f 'cnm resolver' || true)
      [ -z "$pid" ] || break
      sleep 0.1
    done
    [ -n "$pid" ] || { log "no \`cnm resolver\` process after apply"; ps -eo pid,args >&2; exit 1; }
    log "cnm resolver: pid $pid, $(tr '\0' ' ' <"/proc/$pid/cmdline")"
    pin "$pid"
    wait_ok "$TOPO-s1" 127.0.0.11 "$W/local.q" 30
    wait_ok "$TOPO-s$N" 127.0.0.11 "$W/one.q" $((60 + N / 10))
    if [ "$PHASE" = cnm ]; then
      measure cnm "local names" "$TOPO-s1" 127.0.0.11 "$W/local.q" "$pid"
      measure cnm "forwarded names" "$TOPO-s1" 127.0.0.11 "$W/fwd.q" "$pid"
    else
      n=$(all_sandboxes 127.0.0.11)
      printf 'RSS\tcnm\t%s\t%s\t%s\n' "$N" "$(rss "$pid")" "$n"
    fi
    ;;
  aardvark | aardvark-rss)
    # The same topology by hand: bridge, N namespaces with veth and address.
    {
      echo "link add $BR type bridge"
      echo "addr add $GW/16 dev $BR"
      echo "link set $BR up"
      for i in $(seq 1 "$N"); do
        echo "netns add $TOPO-s$i"
        echo "link add ve-$i type veth peer name eth0 netns $TOPO-s$i"
        echo "link set ve-$i master $BR up"
      done
    } >"$W/host.batch"
    ip -batch "$W/host.batch"
    for i in $(seq 1 "$N"); do
      printf 'link set lo up\nlink set eth0 up\naddr add %s/16 dev eth0\nroute add default via %s\n' "$(addr "$i")" "$GW" |
        ip -n "$TOPO-s$i" -batch -
    done
    C=/run/containers/networks/aardvark-dns
    mkdir -p "$C"
    { echo "$GW"; for i in $(seq 1 "$N"); do printf '%064x %s  s%s\n' "$i" "$(addr "$i")" "$i"; done; } >"$C/lan"
    "$AARDVARK" --config "$C" -p 53 run >"$W/aardvark.log" 2>&1 || { log "aardvark-dns failed:"; cat "$W/aardvark.log" >&2; exit 1; }
    pid=$(cat "$C/aardvark.pid")
    pin "$pid"
    wait_ok "$TOPO-s1" "$GW" "$W/local.q" 30
    if [ "$PHASE" = aardvark ]; then
      measure aardvark-dns "local names" "$TOPO-s1" "$GW" "$W/local.q" "$pid"
      measure aardvark-dns "forwarded names" "$TOPO-s1" "$GW" "$W/fwd.q" "$pid"
    else
      n=$(all_sandboxes "$GW")
      printf 'RSS\taardvark-dns\t%s\t%s\t%s\n' "$N" "$(rss "$pid")" "$n"
    fi
    ;;
  esac
  exit 0
fi

# ---------------------------------------------------------------------------
# Outside: check, run each phase on its own private host, report.

ARGS=$*
RATE=${RATE:-5000}
N=2 DUR=10 RSS_N=1000 SMOKE=0 ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
  --sandboxes) N=$2; shift 2 ;;
  --duration) DUR=$2; shift 2 ;;
  --rss-sandboxes) RSS_N=$2; shift 2 ;;
  --only) ONLY=$2; shift 2 ;;
  --smoke) SMOKE=1 N=2 DUR=1 RSS_N=10; shift ;;
  *) echo "usage: bench/dns.sh [--smoke] [--sandboxes N] [--duration S] [--rss-sandboxes M] [--only cnm|aardvark]" >&2; exit 2 ;;
  esac
done
case "$ONLY" in "" | cnm | aardvark) ;; *) log "--only cnm or --only aardvark"; exit 2 ;; esac
[ "$N" -ge 1 ] && [ "$RSS_N" -ge 1 ] && [ "$N" -le 60000 ] && [ "$RSS_N" -le 60000 ] || { log "sandboxes: 1 to 60000"; exit 2; }
[ "$(id -u)" = 0 ] || { log "needs root (namespaces, veths)"; exit 1; }
missing=()
command -v dnsperf >/dev/null || missing+=("dnsperf (Debian package dnsperf)")
command -v dnsmasq >/dev/null || missing+=("dnsmasq (Debian package dnsmasq-base)")
[ "$ONLY" = cnm ] || [ -x "$AARDVARK" ] || missing+=("aardvark-dns (Debian package aardvark-dns)")
command -v taskset >/dev/null || missing+=("taskset (util-linux)")
if [ "${#missing[@]}" -gt 0 ]; then
  echo "#################################################################" >&2
  echo "## bench/dns.sh $([ "$SMOKE" = 1 ] && echo SKIPPED || echo CANNOT RUN): not installed: ${missing[*]}" >&2
  echo "## apt-get install -y dnsperf aardvark-dns dnsmasq-base" >&2
  echo "#################################################################" >&2
  [ "$SMOKE" = 1 ] && exit 0 || exit 1
fi
CNM=$(realpath "${CNM:-target/release/cnm}")
if [ "$ONLY" != aardvark ] && ! "$CNM" resolver --help >/dev/null 2>&1; then
  log "$CNM has no \`resolver\` command (embedded DNS); build it, or use --only aardvark"
  exit 1
fi
W=$(mktemp -d)
chmod 755 "$W"
trap 'rm -rf "$W"' EXIT
for i in $(seq 1 1000); do echo "q$i.example.test A"; done >"$W/fwd.q"
for d in "${ST[@]}"; do mkdir -p "$d"; done

# ph PHASE N: the phase on a fresh private host; its RESULT/RSS lines.
ph() {
  local p=$1 n=$2 out rc=0
  mkdir -p "$W/$p"
  cp "$W/fwd.q" "$W/$p/"
  out=$(CNM=$CNM DUR=$DUR RATE=$RATE unshare --net --mount --propagation private --pid --kill-child --mount-proc \
    -- bash "$SELF" --inside "$p" "$n" "$W/$p" 2>"$W/$p.err") || rc=$?
  if [ "$rc" != 0 ]; then log "phase $p ($n sandboxes) failed (exit $rc):"; tail -20 "$W/$p.err" >&2; return 1; fi
  printf '%s\n' "$out" | grep -E '^(RESULT|RSS)	'
}
rows=$W/rows
: >"$rows"
log "upstream floor, 2 x ${DUR} s"; ph upstream 1 >>"$rows"
if [ "$ONLY" != aardvark ]; then
  log "cnm, $N sandboxes, 4 x ${DUR} s"; ph cnm "$N" >>"$rows"
  log "cnm, $RSS_N sandboxes (RSS)"; ph cnm-rss "$RSS_N" >>"$rows"
fi
if [ "$ONLY" != cnm ]; then
  log "aardvark-dns, $N sandboxes, 4 x ${DUR} s"; ph aardvark "$N" >>"$rows"
  log "aardvark-dns, $RSS_N sandboxes (RSS)"; ph aardvark-rss "$RSS_N" >>"$rows"
fi

mib() { [ "$1" != - ] && awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }' || echo "–"; }
versions="dnsperf $(dnsperf -h 2>&1 | sed -n 's/^Version //p'), dnsmasq $(dnsmasq --version | awk 'NR == 1 {print $3}')"
[ "$ONLY" = cnm ] || versions="$versions, $("$AARDVARK" --version 2>/dev/null | head -1)"
[ "$ONLY" = aardvark ] || versions="$versions, $("$CNM" --version 2>/dev/null | head -1) ($CNM)"
pinned="server on CPU 0, dnsperf and dnsmasq on the rest"
[ "${DNS_BENCH_PIN:-1}" = 1 ] && [ "$(nproc)" -ge 2 ] || pinned="no CPU pinning"
report() {
  echo "DNS over UDP from sandbox s1; one bridge network, $N sandboxes; $(nproc) CPUs ($pinned); $versions."
  echo "Local names: s1..s$N (A). Forwarded: 1,000 names under example.test (A), answered by the dnsmasq upstream."
  echo "Each row: dnsperf -l $DUR flat out (-c 1, -q 100 in flight${DNSPERF_OPTS:+, $DNSPERF_OPTS}; qps and latency under that load), then -l $DUR at $RATE qps offered (latency at light load). RSS: the server's VmRSS after both."
  echo
  echo "| server | query kind | qps | p50 (ms) | p99 (ms) | p50 at $RATE qps (ms) | p99 at $RATE qps (ms) | RSS | answers |"
  echo "|---|---|---|---|---|---|---|---|---|"
  awk -F'\t' '$1 == "RESULT"' "$rows" | while IFS=$'\t' read -r _ s k q a b la lb r c; do
    echo "| $s | $k | $q | $a | $b | $la | $lb | $(mib "$r") | $c |"
  done
  awk -F'\t' '$1 == "RSS"' "$rows" | while IFS=$'\t' read -r _ s n r c; do
    echo "| $s | RSS with $n sandboxes, after one query to each | | | | | | $(mib "$r") | $c/$n sandboxes answered |"
  done
  [ -z "$ONLY" ] || return 0
  echo
  awk -F'\t' '
    $1 == "RESULT" && $3 == "local names" { q[$2] = $4; p[$2] = $6; lp[$2] = $8 }
    $1 == "RSS" && $2 == "cnm" { n = $3; kib = $4 }
    END {
      c = "cnm"; a = "aardvark-dns"; r = q[a] > 0 ? q[c] / q[a] : 0
      printf "Goals: local qps %.2fx aardvark-dns'"'"'s (goal >= 2x): %s. ", r, ((r >= 2) ? "met" : "MISSED")
      printf "Local p99 %s ms vs %s ms flat out, %s vs %s ms at '"$RATE"' qps (goal lower): %s. ", \
        p[c], p[a], lp[c], lp[a], ((p[c] + 0 < p[a] + 0 && lp[c] + 0 < lp[a] + 0) ? "met" : "MISSED")
      printf "Resolver RSS with %d sandboxes %.1f MB (goal < 20 MB): %s.\n", n, kib * 1024 / 1e6, \
        ((n < 1000) ? "not measured at 1000" : ((kib * 1024 < 20e6) ? "met" : "MISSED")) }' "$rows"
}
report | tee "$W/report.md"
if [ "$SMOKE" = 0 ] && [ -z "$ONLY" ]; then
  mkdir -p bench/results
  { echo "# Embedded DNS: cnm resolver vs aardvark-dns"; echo
    echo "\`bench/dns.sh${ARGS:+ $ARGS}\`, $(date -u +%Y-%m-%d), $(uname -r)."; echo
    cat "$W/report.md"; } >bench/results/dns.md
  log "written to bench/results/dns.md"
fi
