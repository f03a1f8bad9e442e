# Bad input: a clear located error, exit 1, kernel untouched.
source "$(dirname "$0")/lib.sh"
expect_rc 0 cnm apply "$EXAMPLES/quickstart.yaml"
snapshot >"$WORK/before"
B="$WORK/bad.yaml"
printf 'version: 1\nname: quick\nnetworks:\n  lan: { subnet: 10.88.0.0/24, gateway: 10.9.0.1 }\n' >"$B"
for cmd in validate plan apply; do
  expect_rc 1 cnm "$cmd" "$B"
  grep -q "$B:4:41: network lan: gateway 10.9.0.1 is outside subnet 10.88.0.0/24" "$WORK/err" || fail "$cmd: $(cat "$WORK/err")"
done
printf 'version: 1\nname: quick\nsandboxes: {a: {}}\nendpoints:\n  e: { network: nope, sandbox: a }\n' >"$B"
expect_rc 1 cnm apply "$B"
grep -q "$B:5:17: endpoint e: network 'nope' is not defined" "$WORK/err" || fail "dangling: $(cat "$WORK/err")"
snapshot >"$WORK/after"
diff -u "$WORK/before" "$WORK/after" || fail "bad input changed the kernel"
echo "PASS"
