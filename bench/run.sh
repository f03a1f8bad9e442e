#!/usr/bin/env bash
# cnm benchmarks against the kernel floor (iproute2 batch files), netavark
# (Podman's network tool, when installed) and the goals of issue 29. Every
# measurement runs on a fresh private host (tests/support/private-host.sh).
# Prints Markdown tables, each figure beside its goal.
#
#   bench/run.sh            full size: N = 1000 (without and with one
#                           published port per endpoint) and 5000 (without),
#                           3 repetitions (1 at 5000); then CNI ADD/DEL with
#                           1,000 attachments and the Docker plugin's Join
#   bench/run.sh --smoke    N = 10 and 50, 1 repetition (what CI runs)
#
# For each: cnm's full apply, no-op plan, +1 and -1 sandbox, destroy, peak
# RSS of plan and apply, and `cnm watch` from the file renamed with one
# more sandbox to that sandbox's files existing, and its RSS when idle;
# next to the floor (the same kernel work through iproute2 batch files,
# destroy by deleting the namespaces) and, up to NETAVARK_MAX, netavark;
# then how each step grew from the smallest size to the largest.
#
# Needs root, iproute2, nftables; netavark (/usr/lib/podman/netavark) and GNU
# time (/usr/bin/time) are used when present.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="1000 5000"; REPS=3; SMOKE=0
if [ "${1:-}" = "--smoke" ]; then SIZES="10 50"; REPS=1; SMOKE=1; shift; fi
# BENCH_SIZES="1000" BENCH_REPS=1 bench/run.sh: one size, one repetition.
SIZES=${BENCH_SIZES:-$SIZES}; REPS=${BENCH_REPS:-$REPS}
CNM=$(realpath "${1:-target/release/cnm}")
PH=tests/support/private-host.sh
NETAVARK=/usr/lib/podman/netavark
# netavark slows down as its iptables rules grow (minutes at N = 1000); it is
# measured up to this N only.
NETAVARK_MAX=${NETAVARK_MAX:-100}
B=$(mktemp -d)
chmod 755 "$B"
trap 'rm -rf "$B"' EXIT

# A bridge takes at most 1,024 ports (the kernel's BR_MAX_PORTS): N
# sandboxes are spread over one bridge network per 1,000, round-robin.
nets_for() { echo $((($1 + 999) / 1000)); }
# Sandbox I's network and address, with NETS networks.
net_of() { echo $((($1 - 1) % $2)); }
addr_of() { # I NETS
  local k=$((($1 - 1) / $2 + 1))
  echo "10.$((96 + $(net_of "$1" "$2"))).$(((k + 1) / 256)).$(((k + 1) % 256))"
}

topology() { # N EXTRA PORTS : N+EXTRA sandboxes, one bridge endpoint each (and one published port)
  local n=$1 extra=$2 ports=$3 nets
  nets=$(nets_for "$n")
  printf 'version: 1\nname: bench\nnetworks:\n'
  for k in $(seq 0 $((nets - 1))); do
    if [ "$nets" = 1 ]; then printf '  lan: { subnet: 10.96.0.0/16 }\n'; else printf '  lan%s: { subnet: 10.%s.0.0/16 }\n' "$k" $((96 + k)); fi
  done
  printf 'sandboxes:\n'
  for i in $(seq 1 $((n + extra))); do printf '  s%s: {}\n' "$i"; done
  printf 'endpoints:\n'
  for i in $(seq 1 $((n + extra))); do
    local net=lan
    [ "$nets" = 1 ] || net="lan$(net_of "$i" "$nets")"
    if [ "$ports" = 1 ]; then
      printf '  e%s: { network: %s, sandbox: s%s, ports: ["%s:80"] }\n' "$i" "$net" "$i" $((20000 + i))
    else
      printf '  e%s: { network: %s, sandbox: s%s }\n' "$i" "$net" "$i"
    fi
  done
}

# The same kernel work as `cnm apply`, by iproute2 and nft batch files.
floor_files() { # N PORTS DIR
  local n=$1 ports=$2 d=$3 nets
  nets=$(nets_for "$n")
  mkdir -p "$d"
  {
    for k in $(seq 0 $((nets - 1))); do
      echo "link add br-bench$k type bridge"
      echo "addr add 10.$((96 + k)).0.1/16 dev br-bench$k"
      echo "link set br-bench$k up"
    done
    for i in $(seq 1 "$n"); do
      echo "netns add bench-s$i"
      echo "link add ve-$i type veth peer name eth0 netns bench-s$i"
      echo "link set ve-$i master br-bench$(net_of "$i" "$nets") up"
    done
  } >"$d/host.batch"
  for i in $(seq 1 "$n"); do
    printf 'link set lo up\nlink set eth0 up\naddr add %s/16 dev eth0\nroute add default via 10.%s.0.1\n' "$(addr_of "$i" "$nets")" $((96 + $(net_of "$i" "$nets"))) >"$d/ns$i.batch"
  done
  {
    echo "table inet floor {"
    echo " chain pre { type nat hook prerouting priority -100; }"
    if [ "$ports" = 1 ]; then
      for i in $(seq 1 "$n"); do echo " chain pre { fib daddr type local tcp dport $((20000 + i)) dnat ip to $(addr_of "$i" "$nets"):80; }"; done
    fi
    echo " chain post { type nat hook postrouting priority 100; }"
    for k in $(seq 0 $((nets - 1))); do
      echo " chain post { ip saddr 10.$((96 + k)).0.0/16 oifname != \"br-bench$k\" masquerade; }"
    done
    echo "}"
  } >"$d/rules.nft"
  for i in $(seq 1 "$n"); do echo "netns del bench-s$i"; done >"$d/destroy.batch"
}

netavark_files() { # N PORTS DIR
  local n=$1 ports=$2 d=$3 pm
  mkdir -p "$d"
  for i in $(seq 1 "$n"); do
    local ip="10.96.$(((i + 1) / 256)).$(((i + 1) % 256))"
    pm='[]'
    if [ "$ports" = 1 ]; then
      pm=$(printf '[{"host_ip":"","container_port":80,"host_port":%s,"range":1,"protocol":"tcp"}]' $((20000 + i)))
    fi
    printf '{"container_id":"%064d","container_name":"s%s","port_mappings":%s,"networks":{"bench":{"static_ips":["%s"],"interface_name":"eth0"}},"network_info":{"bench":{"name":"bench","id":"%064d","driver":"bridge","network_interface":"br-bench","subnets":[{"subnet":"10.96.0.0/16","gateway":"10.96.0.1"}],"ipv6_enabled":false,"internal":false,"dns_enabled":false,"ipam_options":{"driver":"host-local"}}}}\n' "$i" "$i" "$pm" "$ip" 1 >"$d/c$i.json"
  done
}

# Run a snippet on a fresh private host; it prints one line of numbers
# (ns or KiB).
run() {
  local out
  out=$("$PH" bash -c "set -e; $1" 2>"$B/err" | tail -1) || true
  # The kernel tears the last private host's namespaces down in the
  # background: let it finish before the next measurement.
  sleep "$SETTLE"
  case "$out" in
    '' | *[!0-9\ ]*) echo "bench: a measurement failed: $1" >&2; cat "$B/err" >&2; exit 1 ;;
  esac
  echo "$out"
}
SETTLE=0
T0='t0=$(date +%s%N)'
T1='echo $(( $(date +%s%N) - t0 ))'
RSS="/usr/bin/time -f %M"
HAVE_TIME=0; [ -x /usr/bin/time ] && HAVE_TIME=1

# median min max of the numbers given, in ms.
stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%.1f %.1f %.1f", a[int((NR+1)/2)]/1e6, a[1]/1e6, a[NR]/1e6}'; }
cell() { printf '%s (%s–%s)' "$1" "$2" "$3"; }
ms() { local m a b; read -r m a b <<<"$(stats "$@")"; cell "$m" "$a" "$b"; }
median_of() { stats "$@" | cut -d' ' -f1; }
median_mib() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "–" }'; }
mib() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%.0f MiB", a[int((NR+1)/2)]/1024}'; }

# `cnm watch` on the topology: once converged, the file is renamed over
# with one more sandbox; prints the time until that sandbox's files exist
# (the last step of its apply), and watch's RSS (KiB) once idle again.
watch_snippet() { # YAML YAML+1 N+1
  cat <<EOF
cp $1 /tmp/w.yaml
$CNM watch /tmp/w.yaml 2>/tmp/w.log & W=\$!
until grep -q converged /tmp/w.log; do sleep 0.05; kill -0 \$W; done
# Quiet first: after its first apply a watcher reads every namespace once
# more (each just followed); at 5,000 a rename 2 s later met that round.
while :; do a=\$(wc -l </tmp/w.log); sleep 2; [ "\$(wc -l </tmp/w.log)" = "\$a" ] && break; done
before=\$(grep -c converged /tmp/w.log)
cp $2 /tmp/w.new
$T0; mv /tmp/w.new /tmp/w.yaml
until [ -e /etc/netns/bench-s$3/hosts ]; do sleep 0.001; kill -0 \$W; done
lat=\$(( \$(date +%s%N) - t0 ))
until [ "\$(grep -c converged /tmp/w.log)" -gt "\$before" ]; do sleep 0.01; kill -0 \$W; done
sleep 3
rss=\$(awk '/^VmRSS/ {print \$2}' /proc/\$W/status)
kill \$W; wait \$W || true
echo \$lat \$rss
EOF
}

# Issue 29's goal for a row at N = 1,000 and 5,000 (other sizes: none).
goal() { # ROW N
  case "$1:$2" in
    apply:1000) echo "≤ 1500" ;; plan:1000) echo "≤ 100" ;; inc:1000) echo "≤ 150" ;;
    watch:1000) echo "≤ 100" ;; destroy:1000) echo "≤ 1500" ;;
    apply:5000 | destroy:5000) echo "≤ 8000" ;;
    prss:1000) echo "≤ 30 MB" ;; arss:1000) echo "≤ 60 MB" ;; wrss:1000) echo "≤ 30 MB" ;;
    arss:5000) echo "≤ 150 MB" ;;
    *) echo "–" ;;
  esac
}
# Medians kept for the growth table: GROW[row:N] (ms or KiB).
declare -A GROW

echo "| scenario | N | ports | cnm ms, median (min–max) | goal ms | floor ms | cnm/floor | netavark ms | netavark/cnm |"
echo "|---|---|---|---|---|---|---|---|---|"
RSSROWS=()
for n in $SIZES; do
  SETTLE=$((n / 500))
  reps=$REPS; [ "$n" -gt 1000 ] && reps=1
  variants="0 1"; [ "$n" -gt 1000 ] && variants=0
  for ports in $variants; do
    pl=no; [ "$ports" = 1 ] && pl=yes
    T="$B/t$n-$ports.yaml"; T1Y="$B/t$n-$ports+1.yaml"
    topology "$n" 0 "$ports" >"$T"
    topology "$n" 1 "$ports" >"$T1Y"
    F="$B/floor$n-$ports"; floor_files "$n" "$ports" "$F"
    netavark_files "$n" "$ports" "$B/nv$n-$ports"
    apply=() floor=() fdest=() nv=() inc=() dec=() noop=() dest=() wlat=() wrss=() prss=() arss=()
    for _ in $(seq 1 "$reps"); do
      apply+=("$(run "$T0; $CNM apply $T >/dev/null; $T1")")
      floor+=("$(run "cd $F; $T0; ip -batch host.batch; for i in \$(seq 1 $n); do ip -n bench-s\$i -batch ns\$i.batch; done; nft -f rules.nft; $T1")")
      # Destroy floor: every namespace deleted in one batch, then the
      # bridge, until the kernel has torn the veths down.
      fdest+=("$(run "cd $F; ip -batch host.batch; $T0; ip -batch destroy.batch; for b in \$(ip -o link show type bridge | awk -F': ' '{print \$2}'); do ip link del \$b; done; while [ -n \"\$(ip -o link show type veth)\" ]; do sleep 0.005; done; $T1")")
      if [ -x "$NETAVARK" ] && [ "$n" -le "$NETAVARK_MAX" ]; then
        nv+=("$(run "mkdir -p /run/nv; for i in \$(seq 1 $n); do ip netns add c\$i; done; $T0; for i in \$(seq 1 $n); do $NETAVARK --config /run/nv setup /run/netns/c\$i <$B/nv$n-$ports/c\$i.json >/dev/null; done; $T1")")
      fi
      inc+=("$(run "$CNM apply $T >/dev/null; $T0; $CNM apply $T1Y >/dev/null; $T1")")
      dec+=("$(run "$CNM apply $T1Y >/dev/null; $T0; $CNM apply $T >/dev/null; $T1")")
      noop+=("$(run "$CNM apply $T >/dev/null; $T0; $CNM plan --detailed-exitcode $T >/dev/null; $T1")")
      dest+=("$(run "$CNM apply $T >/dev/null; $T0; $CNM destroy $T >/dev/null; $T1")")
      read -r l r <<<"$(run "$(watch_snippet "$T" "$T1Y" $((n + 1)))")"
      wlat+=("$l"); wrss+=("$r")
    done
    if [ "$HAVE_TIME" = 1 ]; then
      arss+=("$(run "$RSS $CNM apply $T 2>&1 >/dev/null | tail -1")")
      prss+=("$(run "$CNM apply $T >/dev/null; $RSS $CNM plan $T 2>&1 >/dev/null | tail -1")")
    fi
    nvcell="–"; nvratio="–"
    if [ "${#nv[@]}" -gt 0 ]; then
      nvcell=$(ms "${nv[@]}"); nvratio=$(ratio "$(median_of "${nv[@]}")" "$(median_of "${apply[@]}")")
    fi
    g() { [ "$ports" = 0 ] && goal "$1" "$n" || echo "–"; }
    echo "| full apply | $n | $pl | $(ms "${apply[@]}") | $(g apply) | $(ms "${floor[@]}") | $(ratio "$(median_of "${apply[@]}")" "$(median_of "${floor[@]}")") | $nvcell | $nvratio |"
    echo "| no-op plan | $n | $pl | $(ms "${noop[@]}") | $(g plan) | | | | |"
    echo "| add one sandbox | $n | $pl | $(ms "${inc[@]}") | $(g inc) | | | | |"
    echo "| remove one sandbox | $n | $pl | $(ms "${dec[@]}") | – | | | | |"
    echo "| destroy | $n | $pl | $(ms "${dest[@]}") | $(g destroy) | $(ms "${fdest[@]}") | $(ratio "$(median_of "${dest[@]}")" "$(median_of "${fdest[@]}")") | | |"
    echo "| watch: file renamed with +1 → its files exist | $n | $pl | $(ms "${wlat[@]}") | $(g watch) | | | | |"
    prow="–"; arow="–"
    if [ "$HAVE_TIME" = 1 ]; then prow=$(mib "${prss[@]}"); arow=$(mib "${arss[@]}"); fi
    RSSROWS+=("| $n | $pl | $prow ($(g prss)) | $arow ($(g arss)) | $(mib "${wrss[@]}") ($(g wrss)) |")
    if [ "$ports" = 0 ]; then
      for row in apply noop inc dest wlat; do
        eval "GROW[$row:$n]=\$(median_of \"\${$row[@]}\")"
      done
      if [ "$HAVE_TIME" = 1 ]; then GROW[prss:$n]=$(median_mib "${prss[@]}"); GROW[arss:$n]=$(median_mib "${arss[@]}"); fi
      GROW[wrss:$n]=$(median_mib "${wrss[@]}")
    fi
  done
done
echo
echo "| N | ports | plan peak RSS (goal) | apply peak RSS (goal) | watch idle RSS (goal) |"
echo "|---|---|---|---|---|"
printf '%s\n' "${RSSROWS[@]}"

# Growth from the smallest size to the largest (no ports): issue 29 asks
# at most 6x the time and 5x the memory for 5x the sandboxes.
read -r small large <<<"$(echo "$SIZES" | tr ' ' '\n' | sort -n | sed -n '1p;$p' | tr '\n' ' ')"
if [ -n "$large" ] && [ "$small" != "$large" ]; then
  echo
  echo "| step | N = $small | N = $large | ratio | goal |"
  echo "|---|---|---|---|---|"
  for row in "apply:full apply:6" "noop:no-op plan:6" "inc:add one sandbox:6" "dest:destroy:6" "wlat:watch +1:6" \
    "prss:plan peak RSS:5" "arss:apply peak RSS:5" "wrss:watch idle RSS:5"; do
    IFS=: read -r key label limit <<<"$row"
    a=${GROW[$key:$small]:-}; b=${GROW[$key:$large]:-}
    [ -n "$a" ] && [ -n "$b" ] || continue
    echo "| $label | $a | $b | $(ratio "$b" "$a") | ≤ $limit |"
  done
  echo "(ms, or MiB for RSS)"
fi

# One endpoint publishing every port (ports kept) and a shifted range of
# 10,000 ports (one map element each): one rule per chain and family.
printf 'version: 1\nname: full\nnetworks:\n  lan: { subnet: 10.97.0.0/24 }\nsandboxes: { a: {} }\nendpoints:\n  e: { network: lan, sandbox: a, ports: ["1-65535:1-65535", "20000-29999:30000-39999/udp"] }\n' >"$B/full.yaml"
full=() fullrss=()
for _ in $(seq 1 "$REPS"); do
  full+=("$(run "$T0; $CNM apply $B/full.yaml >/dev/null; $T1")")
done
read -r m a b <<<"$(stats "${full[@]}")"
echo
echo "Full port range (1-65535 kept, plus 10,000 shifted UDP ports): apply $m ms ($a–$b)$(
  [ -x /usr/bin/time ] && printf ', peak RSS %s KiB' "$(run "/usr/bin/time -f %M $CNM apply $B/full.yaml 2>&1 >/dev/null | tail -1")")."

# The runtimes' calls: CNI ADD/DEL with 1,000 attachments present (goal:
# ADD p50 ≤ 40 ms) and the Docker plugin's Join (goal: p50 ≤ 20 ms).
echo
if [ "$SMOKE" = 1 ]; then
  bench/cni.sh --smoke "$CNM"
  bench/docker-join.sh --smoke "$CNM"
else
  BENCH_SIZES=1000 bench/cni.sh "$CNM"
  echo "(goal: cnm ADD p50 ≤ 40 ms at N = 1000)"
  echo
  echo "| call | p50 ms | p99 ms |"
  echo "|---|---|---|"
  bench/docker-join.sh "$CNM"
  echo "(goal: Join p50 ≤ 20 ms)"
fi
