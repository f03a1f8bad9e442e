# destroy returns the kernel to exactly its state before the first apply.
source "$(dirname "$0")/lib.sh"
T="$EXAMPLES/two-tier.yaml"
snapshot >"$WORK/before"
expect_rc 0 cnm apply "$T"
expect_rc 0 cnm apply "$EXAMPLES/null-host.yaml"
expect_rc 0 cnm destroy "$T"
expect_rc 0 cnm destroy --topology misc
sleep 0.2
snapshot >"$WORK/after"
diff -u "$WORK/before" "$WORK/after" || fail "destroy left something behind"
[ -z "$(ls /run/cnm/topologies 2>/dev/null)" ] || fail "records left in /run/cnm"
expect_rc 0 cnm destroy "$T"
grep -q "No changes" "$WORK/out" || fail "second destroy was not a no-op"
echo "PASS"
