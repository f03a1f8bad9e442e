# Errors a person can act on: every unknown key in one run with "did you
# mean", a driver name close to a built-in one or to a plugin present gets
# a suggestion on the same line, plan never waits for a plugin, apply says
# at once that it waits and how long, and reports the wait it made; -o json
# errors carry their key path; an invalid value gives no follow-on error.
source "$(dirname "$0")/lib.sh"

step "four misspelled keys: four errors, each with a suggestion"
K="$WORK/keys.yaml"
printf 'version: 1\nname: t\nnetworks:\n  n: { subnett: 10.1.0.0/24, drivr: bridge }\nsandboxes:\n  s: { hostnme: x }\nendpoints:\n  e: { netwrok: n, sandbox: s }\n' >"$K"
expect_rc 1 cnm plan "$K"
for want in "$K:4:8: networks.n: unknown key 'subnett'; did you mean 'subnet'?" \
            "$K:4:30: networks.n: unknown key 'drivr'; did you mean 'driver'?" \
            "$K:6:8: sandboxes.s: unknown key 'hostnme'; did you mean 'hostname'?" \
            "$K:8:8: endpoints.e: unknown key 'netwrok'; did you mean 'network'?"; do
  grep -F >/dev/null "$want" "$WORK/err" || fail "missing '$want' in: $(cat "$WORK/err")"
done
grep >/dev/null "4 problem(s)" "$WORK/err" || fail "not four problems: $(cat "$WORK/err")"
expect_rc 1 cnm plan -o json "$K"
[ "$(grep -c '"key":"networks.n.subnett"\|"key":"networks.n.drivr"\|"key":"sandboxes.s.hostnme"\|"key":"endpoints.e.netwrok"' "$WORK/out")" = 4 ] \
  || fail "JSON errors lack their keys: $(cat "$WORK/out")"
[ "$(grep -c '"kind":"unknown_key"' "$WORK/out")" = 4 ] || fail "JSON errors lack their kind: $(cat "$WORK/out")"

step "a syntax error's JSON object names the key path where it is"
S="$WORK/syntax.yaml"
printf 'version: 1\nname: t\nnetworks:\n  n:\n    subnet: 10.1.0.0/24\n   driver: bridge\n' >"$S"
expect_rc 1 cnm plan -o json "$S"
grep >/dev/null '"key":"networks"' "$WORK/out" || fail "syntax error without a key: $(cat "$WORK/out")"
grep >/dev/null '"kind":"syntax"' "$WORK/out" || fail "syntax error without its kind: $(cat "$WORK/out")"

step "an invalid subnet: one error, no follow-on about the address in it"
B="$WORK/bad.yaml"
printf 'version: 1\nname: t\nnetworks:\n  n: { subnet: 10.1.0.0/33 }\nsandboxes:\n  s: {}\nendpoints:\n  e: { network: n, sandbox: s, address: 10.1.0.5 }\n' >"$B"
expect_rc 1 cnm plan "$B"
grep >/dev/null "^1 problem(s)" "$WORK/err" || fail "follow-on errors: $(cat "$WORK/err")"

step "driver: bridg: plan fails at once with 'did you mean', nothing waits"
D="$WORK/drv.yaml"
printf 'version: 1\nname: t\nnetworks:\n  n: { driver: bridg, subnet: 10.1.0.0/24 }\nsandboxes:\n  s: {}\nendpoints:\n  e: { network: n, sandbox: s }\n' >"$D"
snapshot >"$WORK/before"
start=$(date +%s%N)
expect_rc 1 cnm plan "$D"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$ms" -lt 5000 ] || fail "plan waited ${ms} ms for a plugin"
grep >/dev/null "$D:4:16: network n: driver 'bridg' is neither built in (.*) nor a plugin (did you mean 'bridge'?)" "$WORK/err" \
  || fail "no suggestion on the error's line: $(cat "$WORK/err")"
grep >/dev/null "waited" "$WORK/err" && fail "plan says it waited: $(cat "$WORK/err")"
expect_rc 1 cnm plan -o json "$D"
grep >/dev/null '"kind":"driver"' "$WORK/out" || fail "an unknown driver's JSON error is not of kind driver: $(cat "$WORK/out")"

step "apply says at once that it waits, and how long; the wait it reports is the one it made"
start=$(date +%s%N)
CNM_PLUGIN_WAIT=3 "$CNM" apply "$D" >"$WORK/out" 2>"$WORK/err" & A=$!
sleep 1
grep >/dev/null "no driver or plugin named 'bridg' yet (did you mean 'bridge'?); waiting up to 3 s" "$WORK/err" \
  || fail "no notice while waiting: $(cat "$WORK/err")"
wait "$A" && fail "apply of an unknown driver succeeded" || true
ms=$(( ($(date +%s%N) - start) / 1000000 ))
grep >/dev/null "nor a plugin (did you mean 'bridge'?); waited 3 s; looked for /run/docker/plugins/bridg.sock" "$WORK/err" \
  || fail "final error: $(cat "$WORK/err")"
[ "$ms" -ge 2500 ] && [ "$ms" -lt 6000 ] || fail "said it waited 3 s, took ${ms} ms"
snapshot >"$WORK/after"
diff -u "$WORK/before" "$WORK/after" || fail "a refused driver changed the kernel"

step "a name close to a plugin present where Docker looks is suggested"
mkdir -p /run/docker/plugins
socat UNIX-LISTEN:/run/docker/plugins/weavenet.sock,fork SYSTEM:'true' & P=$!
trap 'kill $P 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 40); do [ -S /run/docker/plugins/weavenet.sock ] && break; sleep 0.05; done
sed -i 's/bridg/weavnet/' "$D"
expect_rc 1 cnm plan "$D"
grep >/dev/null "driver 'weavnet' is neither built in (.*) nor a plugin (did you mean 'weavenet'?)" "$WORK/err" \
  || fail "no plugin suggestion: $(cat "$WORK/err")"
echo PASS
