# Several simulated hosts inside one private host, joined by an underlay.
# Source it from a script that already runs under tests/support/private-host.sh
# (callers run with `set -euo pipefail`).
#
#   mh_up N            create hosts h1..hN and the underlay
#   on hN CMD ARGS...  run CMD in host N's network and mount namespaces
#                      (stdin/stdout/stderr passed through, exit code kept)
#   on_bg hN CMD ...   the same in the background; its PID in MH_LAST_BG,
#                      killed by mh_down (a plain `on ... &` gives the PID of
#                      a subshell, and killing it leaves CMD running)
#   mh_down            remove every host (also run from the EXIT trap)
#
# Each host is a sleeping process with its own network and mount namespaces,
# and tmpfs over /run/netns, /run/cnm, /var/lib/cnm and /etc/netns (like private-host.sh),
# plus a fresh sysfs, so /sys/class/net shows that host's interfaces.
#
# Underlay: bridge `under` in the caller's namespace; host N has eth0 with
# ${MH_NET}.1N/24 (MTU 1500), reached through veth u-hN on `under`.
#   MH_HOSTS          host names, in order (h1 h2 ...)
#   MH_PID[hN]        PID of host N (nsenter -t target)
#   MH_IP[hN]         host N's underlay address, without prefix
#   MH_NET            underlay /24 prefix (192.168.100)
#   MH_DIR            scratch directory of the harness
#   MH_BG             PIDs started by on_bg

MH_NET=192.168.100
MH_HOSTS=()
declare -A MH_PID=() MH_IP=()
MH_DIR=
MH_BG=()
MH_LAST_BG=

# Run a command inside a host: `on h2 ip -br addr`.
on() {
  local h=$1; shift
  local pid=${MH_PID[$h]:-}
  [ -n "$pid" ] || { echo "on: no such host: $h" >&2; return 2; }
  nsenter -t "$pid" -n -m -- "$@"
}

on_bg() {
  local h=$1; shift
  local pid=${MH_PID[$h]:-}
  [ -n "$pid" ] || { echo "on_bg: no such host: $h" >&2; return 2; }
  nsenter -t "$pid" -n -m -- "$@" &
  MH_LAST_BG=$!
  MH_BG+=("$MH_LAST_BG")
}

mh_up() {
  local n=$1 i h pid tries
  [ "$n" -ge 1 ] && [ "$n" -le 9 ] || { echo "mh_up: 1..9 hosts, not $n" >&2; return 2; }
  [ -z "$MH_DIR" ] || { echo "mh_up: hosts already up" >&2; return 2; }
  MH_DIR=$(mktemp -d)
  _mh_trap

  ip link add under type bridge
  ip link set under up

  for i in $(seq 1 "$n"); do
    h=h$i
    # unshare execs bash, which execs sleep: $! is the host's PID for its
    # whole life. The host's mounts are private to it.
    unshare --net --mount --propagation private -- bash -c '
      set -e
      for d in /run/netns /run/cnm /etc/netns /var/lib/cnm; do mount -t tmpfs tmpfs "$d"; done
      mount -t sysfs sysfs /sys
      ip link set lo up
      touch "$1"
      exec sleep infinity' "mh-$h" "$MH_DIR/$h.ready" </dev/null &
    pid=$!
    MH_PID[$h]=$pid
    MH_HOSTS+=("$h")
    tries=0
    while [ ! -e "$MH_DIR/$h.ready" ]; do
      kill -0 "$pid" 2>/dev/null || { echo "mh_up: host $h died while starting" >&2; return 1; }
      tries=$((tries + 1))
      [ "$tries" -lt 500 ] || { echo "mh_up: host $h not ready after 5s" >&2; return 1; }
      sleep 0.01
    done

    MH_IP[$h]=$MH_NET.1$i
    ip link add "u-$h" mtu 1500 type veth peer name "eth0-$h" mtu 1500
    ip link set "u-$h" master under up
    ip link set "eth0-$h" netns "$pid"
    on "$h" ip link set "eth0-$h" name eth0
    on "$h" ip addr add "${MH_IP[$h]}/24" dev eth0
    on "$h" ip link set eth0 up
  done

  # The underlay is ready when every host reaches every other (bridge ports
  # forward at once: no STP on `under`).
  for h in "${MH_HOSTS[@]}"; do
    for i in "${MH_HOSTS[@]}"; do
      [ "$h" = "$i" ] && continue
      tries=0
      until on "$h" ping -c1 -W1 -q "${MH_IP[$i]}" >/dev/null 2>&1; do
        tries=$((tries + 1))
        [ "$tries" -lt 5 ] || { echo "mh_up: $h cannot reach $i on the underlay" >&2; return 1; }
      done
    done
  done
}

# Kill every host, and every process left in its network namespace or in
# one of its named netns (a process there keeps the namespace, and so the
# underlay veth, alive). The host's mount namespace dies with it, and with it
# the sandboxes' netns mounts. Never fails: it runs from the EXIT trap.
mh_down() {
  local h pid p ns pids
  for p in "${MH_BG[@]}"; do kill "$p" 2>/dev/null || true; done
  for h in "${MH_HOSTS[@]}"; do
    pid=${MH_PID[$h]:-}
    [ -n "$pid" ] || continue
    pids=
    for ns in $(nsenter -t "$pid" -n -m -- ip netns list 2>/dev/null | awk '{print $1}'); do
      pids+=" $(nsenter -t "$pid" -n -m -- ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"
    done
    ns=$(readlink "/proc/$pid/ns/net" 2>/dev/null) || ns=
    if [ -n "$ns" ]; then
      for p in /proc/[0-9]*; do
        p=${p#/proc/}
        case "$p" in "$pid" | "$$" | "$BASHPID") continue ;; esac
        if [ "$(readlink "/proc/$p/ns/net" 2>/dev/null)" = "$ns" ]; then pids+=" $p"; fi
      done
    fi
    for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    ip link del "u-$h" 2>/dev/null || true
  done
  for p in "${MH_BG[@]}"; do wait "$p" 2>/dev/null || true; done
  ip link del under 2>/dev/null || true
  [ -z "$MH_DIR" ] || rm -rf "$MH_DIR"
  MH_HOSTS=() MH_BG=() MH_LAST_BG= MH_DIR=
  MH_PID=() MH_IP=()
  return 0
}

# Run mh_down first on exit, then whatever EXIT trap was there (lib.sh's
# `rm -rf "$WORK"`). `trap -p` output is shell-quoted: re-parse it.
_mh_trap() {
  local prev=
  local cur
  cur=$(trap -p EXIT)
  if [ -n "$cur" ]; then
    eval "set -- $cur"   # trap -- 'CMD' EXIT
    prev=$3
  fi
  case "$prev" in *mh_down*) return 0 ;; esac
  trap "mh_down${prev:+; $prev}" EXIT
}
