# --topology NAME: plan, apply, watch and graph take a topology's applied
# record as the desired state: drift is found and repaired with no file at
# hand, and a watcher of the record follows changes to it.
source "$(dirname "$0")/lib.sh"
T="$WORK/t.yaml"
cp "$EXAMPLES/quickstart.yaml" "$T"
expect_rc 0 cnm apply "$T"
rm "$T"

step "plan --topology: converged, then drift found, then repaired by apply --topology"
expect_rc 0 cnm plan --detailed-exitcode --topology quick
grep >/dev/null "No changes. The kernel matches topology quick" "$WORK/out" || fail "plan: $(cat "$WORK/out")"
ip netns exec quick-beta ip addr flush dev eth0
expect_rc 2 cnm plan --detailed-exitcode --topology quick
expect_rc 0 cnm apply --topology quick
expect_rc 0 cnm plan --detailed-exitcode --topology quick
reach alpha beta
expect_rc 0 cnm graph --topology quick
grep >/dev/null '"alpha"' "$WORK/out" || fail "graph --topology: $(cat "$WORK/out")"
expect_rc 1 cnm plan --topology nosuch
grep >/dev/null "no topology of that name is applied" "$WORK/err" || fail "unknown topology: $(cat "$WORK/err")"

step "watch --topology repairs drift and follows the record"
LOG="$WORK/watch.log"
"$CNM" watch --topology quick 2>"$LOG" & W=$!
trap 'kill -9 $W 2>/dev/null || true; rm -rf "$WORK"' EXIT
until_ok() {
  for _ in $(seq 1 100); do if "$@" >/dev/null 2>&1; then return 0; fi; sleep 0.05; done
  cat "$LOG" >&2; fail "timed out waiting for: $*"
}
until_ok sh -c "'$CNM' status --topology quick | grep 'last apply: converged'"
expect_rc 0 cnm status --topology quick
grep >/dev/null "watched by cnm watch (pid $W) from topology quick (its record)" "$WORK/out" || fail "status: $(cat "$WORK/out")"
ip netns exec quick-alpha ip link del eth0
until_ok ip netns exec quick-alpha ip link show eth0
until_ok "$CNM" plan --detailed-exitcode --topology quick
reach alpha beta
# A runtime (here: an apply of another version) changes the record: the
# watcher keeps the new one, it does not turn it back.
sed 's/^  beta: {}/  beta: {}\n  gamma: {}/; s/^endpoints:/endpoints:\n  gamma-lan: { network: lan, sandbox: gamma }/' "$EXAMPLES/quickstart.yaml" >"$WORK/grown.yaml"
expect_rc 0 cnm apply "$WORK/grown.yaml"
sleep 1.5
[ -e /run/netns/quick-gamma ] || fail "the watcher of the record undid the record's change"
ip netns exec quick-gamma ip link del eth0
until_ok ip netns exec quick-gamma ip link show eth0
reach gamma alpha
kill -TERM "$W"; wait "$W" || true
expect_rc 0 cnm destroy --topology quick
echo PASS
