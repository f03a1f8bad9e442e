# SIGKILL apply and destroy at random moments: the next apply converges and
# the next destroy leaves nothing owned behind.
source "$(dirname "$0")/lib.sh"
T="$EXAMPLES/two-tier.yaml"
snapshot >"$WORK/before"
for i in $(seq 1 15); do
  killed_midway "$CNM" apply "$T"
  expect_rc 0 cnm apply "$T"
  converged "$T"
  killed_midway "$CNM" destroy "$T"
  expect_rc 0 cnm destroy "$T"
done
sleep 0.2
snapshot >"$WORK/after"
diff -u "$WORK/before" "$WORK/after" || fail "killed applies leaked objects"
echo "PASS"
