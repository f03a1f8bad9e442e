# Saved plans (cnm plan --out): the plan file is documented JSON with
# "cnm_plan": 1; cnm show renders it; cnm apply runs exactly it; it is
# refused as stale (exit 1, one line with "stale", the kernel unchanged)
# after a hand change to an object it does not touch, after its records
# changed, and after a host fact it checked changed.
source "$(dirname "$0")/lib.sh"
Q="$EXAMPLES/quickstart.yaml"
P="$WORK/plan.json"

step "plan --out on a fresh host; show renders it; apply runs exactly it"
expect_rc 0 cnm plan "$Q" --out "$P"
grep >/dev/null "Saved the plan to $P" "$WORK/out" || fail "plan did not say where: $(cat "$WORK/out")"
cp "$WORK/out" "$WORK/planned"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["cnm_plan"] == 1, d; assert d["plan"]["topology"] == "quick"' "$P" \
  || fail "not a plan file: $(head -c 300 "$P")"
[ "$(stat -c %a "$P")" = 644 ] || fail "plan file mode $(stat -c %a "$P")"
[ -z "$(ls /run/netns)" ] || fail "plan --out changed the kernel"
expect_rc 0 cnm show "$P"
grep >/dev/null "^  + network lan (bridge br-quick-lan)" "$WORK/out" || fail "show PLANFILE: $(cat "$WORK/out")"
expect_rc 0 cnm apply "$P"
grep >/dev/null "Apply complete! Resources: [0-9]* added, 1 changed, 0 destroyed" "$WORK/out" || fail "apply PLANFILE: $(cat "$WORK/out")"
# What ran is what was shown when planned.
diff <(grep '^  [-+~!]' "$WORK/planned") <(grep '^  [-+~!]' "$WORK/out") || fail "apply ran another plan than the one saved"
converged "$Q"
reach alpha beta

stale() {
  snapshot >"$WORK/before"
  expect_rc 1 cnm apply "$P"
  [ "$(grep -c stale "$WORK/err")" = 1 ] || fail "not refused as stale in one line: $(cat "$WORK/err")"
  grep >/dev/null "$1" "$WORK/err" || fail "stale, but not for '$1': $(cat "$WORK/err")"
  snapshot >"$WORK/after"
  diff -u "$WORK/before" "$WORK/after" || fail "a stale plan changed the kernel"
}

step "applied once, the same plan file is stale"
stale "what the topology owns has changed"

step "a hand change to an object the plan does not touch makes it stale"
sed 's/^  beta: {}/  beta: {}\n  gamma: {}/; s/^endpoints:/endpoints:\n  gamma-lan: { network: lan, sandbox: gamma }/' "$Q" >"$WORK/grown.yaml"
expect_rc 0 cnm plan "$WORK/grown.yaml" --out "$P"
grep >/dev/null "+ sandbox gamma" "$WORK/out" || fail "grown plan: $(cat "$WORK/out")"
ip netns exec quick-beta ip addr flush dev eth0
stale "what the topology owns has changed"
expect_rc 0 cnm apply "$Q"

step "changed records make it stale"
expect_rc 0 cnm plan "$WORK/grown.yaml" --out "$P"
printf 'version: 1\nname: quick\nnetworks:\n  lan: { subnet: 10.88.0.0/24 }\nsandboxes:\n  alpha: { hostname: alpha }\n  beta: {}\nendpoints:\n  alpha-lan: { network: lan, sandbox: alpha, aliases: [app, api] }\n  beta-lan: { network: lan, sandbox: beta }\n' >"$WORK/alias.yaml"
expect_rc 0 cnm apply "$WORK/alias.yaml"
stale "stale"

step "a host fact the plan checked (links, another topology) makes it stale"
expect_rc 0 cnm apply "$Q"
expect_rc 0 cnm plan "$WORK/grown.yaml" --out "$P"
ip link add foreign0 type bridge
stale "the host has changed"
ip link del foreign0
expect_rc 0 cnm plan "$WORK/grown.yaml" --out "$P"
expect_rc 0 cnm apply "$EXAMPLES/two-tier.yaml"
stale "stale"

step "planned again, it applies"
expect_rc 0 cnm plan "$WORK/grown.yaml" --out "$P"
expect_rc 0 cnm apply "$P"
converged "$WORK/grown.yaml"
reach gamma alpha

step "--out with --trust-unchanged is refused; a topology file is still a topology file"
expect_rc 1 cnm plan "$Q" --out "$P" --trust-unchanged
expect_rc 1 cnm show "$Q"
grep >/dev/null "is not a plan file" "$WORK/err" || fail "show FILE: $(cat "$WORK/err")"
expect_rc 0 cnm destroy "$WORK/grown.yaml"
expect_rc 0 cnm destroy "$EXAMPLES/two-tier.yaml"
echo PASS
