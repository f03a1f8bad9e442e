# Shared helpers for end-to-end scripts. Every script runs on a private host
# (tests/support/private-host.sh): its own network and mount namespaces.
set -euo pipefail
: "${CNM:?CNM must point at the cnm binary}"
EXAMPLES="${EXAMPLES:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../examples/topologies" && pwd)}"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

# cnm with its output kept for later assertions.
cnm() { "$CNM" "$@"; }

# Run and require an exit code.
expect_rc() {
  local want=$1; shift
  set +e; "$@" >"$WORK/out" 2>"$WORK/err"; local rc=$?; set -e
  if [ "$rc" != "$want" ]; then
    cat "$WORK/out" "$WORK/err" >&2
    fail "expected exit $want, got $rc: $*"
  fi
}

converged() { expect_rc 0 "$CNM" plan --detailed-exitcode "$1"; }

# Run a command and SIGKILL it at a random moment of its first 100 ms.
killed_midway() {
  "$@" >/dev/null 2>&1 & local pid=$!
  sleep "0.0$((RANDOM % 10))$((RANDOM % 10))"; kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
}
pending() { expect_rc 2 "$CNM" plan --detailed-exitcode "$1"; }

# Reachability from inside a sandbox, through cnm exec (uses its hosts file).
# Three tries: on a loaded machine (the whole suite at once) a first
# neighbour resolution can outlast one second.
reach() {
  for _ in 1 2 3; do
    "$CNM" exec "$1" -- ping -c1 -W1 -q "$2" >/dev/null 2>&1 && return 0
  done
  fail "$1 cannot reach $2"
}
unreachable() { if "$CNM" exec "$1" -- ping -c1 -W1 -q "$2" >/dev/null 2>&1; then fail "$1 reaches $2 but should not"; fi; }

# Everything observable about this private host's network state, in a form
# that changes whenever any object is created, deleted or modified.
# IPv6 link-local lines are left out: the kernel adds them on its own time.
snapshot() {
  dump_ns() {
    ip -o link show | sed -E 's/ (state|qlen) [^ ]+//g'
    ip -o addr show | grep -v ' fe80::' || true
    ip route show table all | grep -v ' fe80::\|^local fe80\|^multicast' || true
  }
  dump_ns
  for ns in $(ip netns list | awk '{print $1}' | sort); do
    echo "== netns $ns"
    ip netns exec "$ns" bash -c "$(declare -f dump_ns); dump_ns"
  done
  nft list ruleset 2>/dev/null || true
  find /etc/netns /run/netns -type f 2>/dev/null | sort | while read -r f; do echo "$f $(md5sum <"$f" 2>/dev/null | cut -c1-32)"; done
}
