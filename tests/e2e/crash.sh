# SIGKILL apply and destroy at random moments: the next apply converges and
# the next destroy leaves nothing owned behind.
source "$(dirname "$0")/lib.sh"
T="$EXAMPLES/two-tier.yaml"
snapshot >"$WORK/before"
for i in $(seq 1 15); do
  "$CNM" apply "$T" >/dev/null 2>&1 & pid=$!
  sleep "0.0$((RANDOM % 10))$((RANDOM % 10))"; kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  expect_rc 0 cnm apply "$T"
  converged "$T"
  "$CNM" destroy "$T" >/dev/null 2>&1 & pid=$!
  sleep "0.0$((RANDOM % 10))$((RANDOM % 10))"; kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  expect_rc 0 cnm destroy "$T"
done
sleep 0.2
snapshot >"$WORK/after"
diff -u "$WORK/before" "$WORK/after" || fail "killed applies leaked objects"
echo "PASS"
