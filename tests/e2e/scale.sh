# 1,000 sandboxes on one bridge (issue 16): apply, an empty plan, names and
# traffic between sandboxes and to a published port, one sandbox added and
# removed, drift of each fast path (a namespace, an address, the firewall)
# still found, and destroy back to the pre-apply snapshot.
source "$(dirname "$0")/lib.sh"
N=${CNM_SCALE_N:-1000}
T="$WORK/scale.yaml"
gen() { # N: sandboxes s1..sN, one endpoint each; every 100th publishes a port
  printf 'version: 1\nname: scale\nnetworks:\n  lan: { subnet: 10.70.0.0/16 }\nsandboxes:\n'
  for i in $(seq 1 "$1"); do printf '  s%s: {}\n' "$i"; done
  printf 'endpoints:\n'
  for i in $(seq 1 "$1"); do
    if [ $((i % 100)) = 0 ]; then
      printf '  e%s: { network: lan, sandbox: s%s, ports: ["%s:8080"] }\n' "$i" "$i" $((30000 + i))
    else
      printf '  e%s: { network: lan, sandbox: s%s }\n' "$i" "$i"
    fi
  done
}
gen "$N" >"$T"
gen $((N + 1)) >"$WORK/plus.yaml"

snapshot >"$WORK/before"
step "apply $N sandboxes"
expect_rc 0 cnm apply "$T"
converged "$T"
[ "$(ls /run/netns | grep -c '^scale-s')" = "$N" ] || fail "not $N namespaces"

step "names and traffic"
reach s1 "s$N"
reach "s$N" s1
cnm exec "s$N" -- socat TCP-LISTEN:8080,reuseaddr,fork SYSTEM:'echo hello' &
SRV=$!
trap 'kill $SRV 2>/dev/null || true; rm -rf "$WORK"' EXIT
got=""
for _ in $(seq 1 50); do
  got=$(cnm exec s1 -- socat -T2 - TCP:10.70.0.1:$((30000 + N)) </dev/null 2>/dev/null || true)
  [ "$got" = hello ] && break
  sleep 0.1
done
[ "$got" = hello ] || fail "published port $((30000 + N)) of s$N not reached from s1 (got '$got')"
kill $SRV 2>/dev/null || true

step "one more sandbox, then one fewer"
expect_rc 0 cnm apply "$WORK/plus.yaml"
converged "$WORK/plus.yaml"
reach "s$((N + 1))" s1
expect_rc 0 cnm apply "$T"
converged "$T"
[ ! -e "/run/netns/scale-s$((N + 1))" ] || fail "the removed sandbox's namespace is still there"

step "--trust-unchanged reads only what the file changed, and keeps every address"
expect_rc 0 cnm apply --trust-unchanged "$WORK/plus.yaml"
grep -q "trusted, not read" "$WORK/err" || fail "apply --trust-unchanged did not say what it left unread"
converged "$WORK/plus.yaml"
reach "s$((N + 1))" s2
ip -n scale-s3 addr flush dev eth0
expect_rc 0 cnm plan --trust-unchanged --detailed-exitcode "$WORK/plus.yaml"
pending "$WORK/plus.yaml"
expect_rc 0 cnm apply "$WORK/plus.yaml"
expect_rc 0 cnm apply --trust-unchanged "$T"
converged "$T"

step "drift is still found at scale, each kind on its own"
mid=$((N / 2))
drifted() { # DESCRIPTION: the plan must show it; apply repairs it
  pending "$T" || fail "drift not found: $1"
  expect_rc 0 cnm apply "$T"
  converged "$T"
}
ip -n "scale-s$mid" addr flush dev eth0
drifted "an address flushed in one namespace"
ip netns del "scale-s$((mid + 1))"
drifted "a namespace deleted"
nft flush chain inet cnm-scale prerouting
drifted "the published ports' chain flushed"
reach "s$mid" "s$((mid + 1))"

step "destroy"
expect_rc 0 cnm destroy "$T"
sleep 0.5
snapshot >"$WORK/after"
diff -u "$WORK/before" "$WORK/after" || fail "destroy left something behind"
echo "PASS"
