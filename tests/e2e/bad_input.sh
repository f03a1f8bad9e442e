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

step "the whole tests/bad corpus: exit 1, located error, kernel unchanged"
BAD="$(cd "$(dirname "$0")/../bad" && pwd)"
n=0
for f in "$BAD"/*.yaml; do
  expect_rc 1 cnm apply "$f"
  grep >/dev/null "^cnm: $f:[0-9]*:[0-9]*: " "$WORK/err" || fail "$f: no located error: $(cat "$WORK/err")"
  grep >/dev/null -F -- "$(head -1 "$f" | sed 's/^# expect: //')" "$WORK/err" || fail "$f: unexpected error: $(cat "$WORK/err")"
  n=$((n + 1))
done
[ "$n" -ge 30 ] || fail "only $n bad files"
snapshot >"$WORK/after"
diff -u "$WORK/before" "$WORK/after" || fail "bad input changed the kernel"
echo "PASS"
