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

step "show prints a topology that re-applies with no changes"
"$CNM" show --topology shop >"$WORK/shown.yaml"
expect_rc 0 cnm validate "$WORK/shown.yaml"
converged "$WORK/shown.yaml" || { cat "$WORK/shown.yaml"; fail "show output is not converged"; }
expect_rc 0 cnm show -o json
grep >/dev/null '"name": "shop"' "$WORK/out" || fail "show -o json lacks the topology"
echo "PASS"
