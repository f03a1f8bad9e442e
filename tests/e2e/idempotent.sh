# A second apply changes nothing, byte for byte, and plan reports convergence.
source "$(dirname "$0")/lib.sh"
T="$EXAMPLES/two-tier.yaml"
expect_rc 0 cnm apply "$T"
sleep 0.3
snapshot >"$WORK/before"
expect_rc 0 cnm apply "$T"
grep -q "No changes. The kernel matches" "$WORK/out" || fail "second apply was not a no-op: $(cat "$WORK/out")"
snapshot >"$WORK/after"
diff -u "$WORK/before" "$WORK/after" || fail "second apply changed the kernel"
converged "$T"
expect_rc 0 cnm plan -o json "$T"
grep -q '"actions": \[\]' "$WORK/out" || fail "json plan of a converged topology has actions"
echo "PASS"
