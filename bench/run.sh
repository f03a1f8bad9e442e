#!/usr/bin/env bash
# cnm benchmarks against the kernel floor (iproute2 batch files) and
# netavark (Podman's network tool, when installed). Every measurement runs on
# a fresh private host (tests/support/private-host.sh). Prints a Markdown table.
#
#   bench/run.sh            full size: N = 10, 100, 1000, 3 repetitions
#   bench/run.sh --smoke    N = 10, 50, 1 repetition (what CI runs)
#
# Needs root, iproute2, nftables; netavark (/usr/lib/podman/netavark) and GNU
# time (/usr/bin/time) are used when present.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="10 100 1000"; REPS=3
if [ "${1:-}" = "--smoke" ]; then SIZES="10 50"; REPS=1; shift; fi
CNM=$(realpath "${1:-target/release/cnm}")
PH=tests/support/private-host.sh
NETAVARK=/usr/lib/podman/netavark
# netavark slows down as its iptables rules grow (minutes at N = 1000); it is
# measured up to this N only.
NETAVARK_MAX=${NETAVARK_MAX:-100}
B=$(mktemp -d)
chmod 755 "$B"
trap 'rm -rf "$B"' EXIT

topology() { # N [EXTRA] : N sandboxes, one bridge endpoint and one published port each
  local n=$1 extra=${2:-0}
  printf 'version: 1\nname: bench\nnetworks:\n  lan: { subnet: 10.96.0.0/16 }\nsandboxes:\n'
  for i in $(seq 1 $((n + extra))); do printf '  s%s: {}\n' "$i"; done
  printf 'endpoints:\n'
  for i in $(seq 1 $((n + extra))); do printf '  e%s: { network: lan, sandbox: s%s, ports: ["%s:80"] }\n' "$i" "$i" $((20000 + i)); done
}

# The same kernel work as `cnm apply`, by iproute2 and nft batch files.
floor_files() { # N DIR
  local n=$1 d=$2
  mkdir -p "$d"
  {
    echo "link add br-bench type bridge"
    echo "addr add 10.96.0.1/16 dev br-bench"
    echo "link set br-bench up"
    for i in $(seq 1 "$n"); do
      echo "netns add bench-s$i"
      echo "link add ve-$i type veth peer name eth0 netns bench-s$i"
      echo "link set ve-$i master br-bench up"
    done
  } >"$d/host.batch"
  for i in $(seq 1 "$n"); do
    printf 'link set lo up\nlink set eth0 up\naddr add 10.96.%s.%s/16 dev eth0\nroute add default via 10.96.0.1\n' $(((i + 1) / 256)) $(((i + 1) % 256)) >"$d/ns$i.batch"
  done
  {
    echo "table inet floor {"
    echo " chain pre { type nat hook prerouting priority -100; }"
    for i in $(seq 1 "$n"); do echo " chain pre { fib daddr type local tcp dport $((20000 + i)) dnat ip to 10.96.$(((i + 1) / 256)).$(((i + 1) % 256)):80; }"; done
    echo " chain post { type nat hook postrouting priority 100; ip saddr 10.96.0.0/16 oifname != \"br-bench\" masquerade; }"
    echo "}"
  } >"$d/rules.nft"
}

netavark_files() { # N DIR
  local n=$1 d=$2
  mkdir -p "$d"
  for i in $(seq 1 "$n"); do
    local ip="10.96.$(((i + 1) / 256)).$(((i + 1) % 256))"
    printf '{"container_id":"%064d","container_name":"s%s","port_mappings":[{"host_ip":"","container_port":80,"host_port":%s,"range":1,"protocol":"tcp"}],"networks":{"bench":{"static_ips":["%s"],"interface_name":"eth0"}},"network_info":{"bench":{"name":"bench","id":"%064d","driver":"bridge","network_interface":"br-bench","subnets":[{"subnet":"10.96.0.0/16","gateway":"10.96.0.1"}],"ipv6_enabled":false,"internal":false,"dns_enabled":false,"ipam_options":{"driver":"host-local"}}}}\n' "$i" "$i" $((20000 + i)) "$ip" 1 >"$d/c$i.json"
  done
}

# Run a snippet on a fresh private host; it prints one number (ns or KiB).
run() {
  local out
  out=$("$PH" bash -c "set -e; $1" 2>"$B/err" | tail -1) || true
  case "$out" in
    ''|*[!0-9]*) echo "bench: a measurement failed: $1" >&2; cat "$B/err" >&2; exit 1 ;;
  esac
  echo "$out"
}
T0='t0=$(date +%s%N)'
T1='echo $(( $(date +%s%N) - t0 ))'

# median min max of the numbers given, in ms.
stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%.1f %.1f %.1f", a[int((NR+1)/2)]/1e6, a[1]/1e6, a[NR]/1e6}'; }
cell() { printf '%s (%s–%s)' "$1" "$2" "$3"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "–" }'; }

echo "| scenario | N | cnm ms, median (min–max) | floor ms | cnm/floor | netavark ms | netavark/cnm |"
echo "|---|---|---|---|---|---|---|"
for n in $SIZES; do
  topology "$n" >"$B/t$n.yaml"
  topology "$n" 1 >"$B/t$n+1.yaml"
  floor_files "$n" "$B/floor$n"
  netavark_files "$n" "$B/nv$n"
  apply=() floor=() nv=() inc=() noop=() dest=()
  for _ in $(seq 1 "$REPS"); do
    apply+=("$(run "$T0; $CNM apply $B/t$n.yaml >/dev/null; $T1")")
    floor+=("$(run "cd $B/floor$n; $T0; ip -batch host.batch; for i in \$(seq 1 $n); do ip -n bench-s\$i -batch ns\$i.batch; done; nft -f rules.nft; $T1")")
    if [ -x "$NETAVARK" ] && [ "$n" -le "$NETAVARK_MAX" ]; then
      nv+=("$(run "mkdir -p /run/nv; for i in \$(seq 1 $n); do ip netns add c\$i; done; $T0; for i in \$(seq 1 $n); do $NETAVARK --config /run/nv setup /run/netns/c\$i <$B/nv$n/c\$i.json >/dev/null; done; $T1")")
    fi
    inc+=("$(run "$CNM apply $B/t$n.yaml >/dev/null; $T0; $CNM apply $B/t$n+1.yaml >/dev/null; $T1")")
    noop+=("$(run "$CNM apply $B/t$n.yaml >/dev/null; $T0; $CNM plan --detailed-exitcode $B/t$n.yaml >/dev/null; $T1")")
    dest+=("$(run "$CNM apply $B/t$n.yaml >/dev/null; $T0; $CNM destroy $B/t$n.yaml >/dev/null; $T1")")
  done
  read -r am amin amax <<<"$(stats "${apply[@]}")"
  read -r fm fmin fmax <<<"$(stats "${floor[@]}")"
  nvcell="–"; nvratio="–"
  if [ "${#nv[@]}" -gt 0 ]; then read -r vm vmin vmax <<<"$(stats "${nv[@]}")"; nvcell=$(cell "$vm" "$vmin" "$vmax"); nvratio=$(ratio "$vm" "$am"); fi
  echo "| full apply | $n | $(cell "$am" "$amin" "$amax") | $(cell "$fm" "$fmin" "$fmax") | $(ratio "$am" "$fm") | $nvcell | $nvratio |"
  read -r m a b <<<"$(stats "${inc[@]}")"; echo "| add one sandbox | $n | $(cell "$m" "$a" "$b") | | | | |"
  read -r m a b <<<"$(stats "${noop[@]}")"; echo "| no-op plan | $n | $(cell "$m" "$a" "$b") | | | | |"
  read -r m a b <<<"$(stats "${dest[@]}")"; echo "| destroy | $n | $(cell "$m" "$a" "$b") | | | | |"
done
if [ -x /usr/bin/time ]; then
  n=${SIZES##* }
  rss=$(run "/usr/bin/time -f %M $CNM apply $B/t$n.yaml 2>&1 >/dev/null | tail -1")
  echo
  echo "Peak RSS of \`cnm apply\` at N = $n: $((rss / 1024)) MiB ($rss KiB)."
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
