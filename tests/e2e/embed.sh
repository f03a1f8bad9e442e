# examples/embed.rs (libnetwork's README main() with cnm as a library): it
# makes a network, an endpoint publishing 8080 → 80, a sandbox with a
# hostname, joins them and prints the port mapping; the host then reaches
# the sandbox and its published port, and the CLI sees the same topology.
source "$(dirname "$0")/lib.sh"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
: "${EMBED:?EMBED must point at the built examples/embed}"

step "the example runs and prints the endpoint's port mapping"
# The embedded resolver runs as `cnm resolver`: cnm on PATH.
export PATH="$(dirname "$CNM"):$PATH"
"$EMBED" >"$WORK/embed.out" 2>&1 || { cat "$WORK/embed.out"; fail "embed failed"; }
cat "$WORK/embed.out"
grep -q 'Current port mapping for endpoint Endpoint1: 8080/tcp -> 80' "$WORK/embed.out" || fail "no port mapping printed"
grep -q 'Endpoint Endpoint1 address: 10.99.0.2/24 on eth0' "$WORK/embed.out" || fail "no address printed"

step "the host reaches the sandbox, and its published port"
ip netns exec embed-container1 hostname >/dev/null
grep -q 'test.docker.io' /etc/netns/embed-container1/hosts || fail "hostname/domainname not in the sandbox's hosts file"
for _ in 1 2; do ping -c1 -W1 -q 10.99.0.2 >/dev/null 2>&1 && break; done
ping -c1 -W2 -q 10.99.0.2 >/dev/null || fail "the host cannot reach the sandbox"
"$CNM" exec container1 -- socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:'echo from-container1' >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 40); do out=$(socat -T2 - TCP:127.0.0.1:8080 </dev/null 2>/dev/null || true); [ "$out" = from-container1 ] && break; sleep 0.1; done
[ "$out" = from-container1 ] || fail "127.0.0.1:8080 answered '$out'"

step "the CLI sees the same topology: converged, shown, destroyed"
cnm show --topology embed >"$WORK/embed.yaml"
grep -q 'Endpoint1' "$WORK/embed.yaml" || fail "show does not list Endpoint1"
expect_rc 0 cnm plan --detailed-exitcode "$WORK/embed.yaml"

step "run again: the controller starts from what was applied (verbs refuse duplicates)"
if "$EMBED" >"$WORK/again.out" 2>&1; then fail "a second run re-created network1"; fi
grep -q 'network network1 exists already' "$WORK/again.out" || { cat "$WORK/again.out"; fail "no clear error on the second run"; }

cnm destroy --topology embed >/dev/null
[ -e /run/netns/embed-container1 ] && fail "the sandbox is left after destroy"
echo PASS
