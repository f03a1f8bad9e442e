# cnm watch: file changes of every kind are applied, an invalid file is
# logged and ignored, drift is repaired without a file change, SIGTERM stops
# it with exit 0 and the network in place.
source "$(dirname "$0")/lib.sh"
T="$WORK/t.yaml"
LOG="$WORK/watch.log"
cp "$EXAMPLES/quickstart.yaml" "$T"
# systemd's side of sd_notify: a datagram socket, each message a line.
socat -u UNIX-RECV:"$WORK/notify" OPEN:"$WORK/notified",creat,append & N=$!
for _ in $(seq 1 40); do [ -S "$WORK/notify" ] && break; sleep 0.05; done
NOTIFY_SOCKET="$WORK/notify" "$CNM" watch "$T" --resync 30s 2>"$LOG" &
W=$!
trap 'kill -9 $W $N 2>/dev/null || true; rm -rf "$WORK"' EXIT

# Poll (up to 5 s) until a command succeeds.
until_ok() {
  for _ in $(seq 1 100); do if "$@" >/dev/null 2>&1; then return 0; fi; sleep 0.05; done
  cat "$LOG" >&2; fail "timed out waiting for: $*"
}
# The whole apply has finished (not just the first change of it).
settled() { until_ok "$CNM" plan --detailed-exitcode "$T"; }
addr_is() { ip netns exec "quick-$1" ip -o -4 addr show eth0 | grep "inet $2/" >/dev/null; }

step "applied on start"
until_ok addr_is alpha 10.88.0.2
settled
reach alpha beta

step "systemd is told it is ready, and cnm status reports the watcher and its last apply"
until_ok grep -q "READY=1" "$WORK/notified"
until_ok grep -q "STATUS=converged at .* (start): .* added" "$WORK/notified"
expect_rc 0 cnm status --topology quick
grep >/dev/null "topology quick: watched by cnm watch (pid $W)" "$WORK/out" || fail "status: $(cat "$WORK/out")"
grep >/dev/null "last apply: converged at" "$WORK/out" || fail "status: $(cat "$WORK/out")"
expect_rc 0 cnm status --topology quick -o json
grep >/dev/null '"running": true' "$WORK/out" || fail "status json: $(cat "$WORK/out")"
grep >/dev/null '"result": "converged"' "$WORK/out" || fail "status json: $(cat "$WORK/out")"
expect_rc 1 cnm status --topology nope

step "in-place write"
sed -i 's/subnet: 10.88.0.0\/24/subnet: 10.77.0.0\/24/' "$T"
until_ok addr_is alpha 10.77.0.2
settled
reach alpha beta

step "atomic rename over the file"
sed 's/subnet: 10.88.0.0\/24/subnet: 10.66.0.0\/24/' "$EXAMPLES/quickstart.yaml" >"$WORK/new.yaml"
mv "$WORK/new.yaml" "$T"
until_ok addr_is alpha 10.66.0.2
settled

step "unlink and create"
rm "$T"
sleep 0.2
sed 's/subnet: 10.88.0.0\/24/subnet: 10.55.0.0\/24/' "$EXAMPLES/quickstart.yaml" >"$T"
until_ok addr_is alpha 10.55.0.2
settled

step "a file still open for writing is never applied, even when what is written so far parses"
# The new version moves the subnet; cut before its last line it parses
# and would take beta's endpoint away.
sed 's/subnet: 10.88.0.0\/24/subnet: 10.56.0.0\/24/' "$EXAMPLES/quickstart.yaml" >"$WORK/next.yaml"
head -n -1 "$WORK/next.yaml" >"$WORK/half.yaml"
expect_rc 0 cnm validate "$WORK/half.yaml"
tail -n 1 "$WORK/next.yaml" | grep >/dev/null "beta-lan" || fail "the example's last line is not beta's endpoint"
exec 3>"$T"
cat "$WORK/half.yaml" >&3
sleep 1.5
addr_is alpha 10.55.0.2 || fail "a file still open for writing was applied"
ip netns exec quick-beta ip link show eth0 >/dev/null || fail "half a file was applied: beta lost its endpoint"
tail -n 1 "$WORK/next.yaml" >&3
exec 3>&-
until_ok addr_is alpha 10.56.0.2
settled
ip netns exec quick-beta ip link show eth0 >/dev/null || fail "beta's endpoint is gone"
reach alpha beta
cp "$WORK/next.yaml" "$WORK/back.yaml"
sed -i 's/10.56.0.0/10.55.0.0/' "$WORK/back.yaml"
mv "$WORK/back.yaml" "$T"
until_ok addr_is alpha 10.55.0.2
settled

step "an invalid file is logged with its location and ignored"
printf 'version: 1\nname: quick\nnetworks:\n  lan: { subnet: 10.44.0.0/24, gateway: 10.9.9.9 }\n' >"$WORK/bad.yaml"
mv "$WORK/bad.yaml" "$T"
until_ok grep "t.yaml:4:41: network lan: gateway 10.9.9.9 is outside subnet 10.44.0.0/24" "$LOG"
kill -0 "$W" || fail "watch died on an invalid file"
addr_is alpha 10.55.0.2 || fail "the last good state was not kept"
reach alpha beta
sed 's/subnet: 10.88.0.0\/24/subnet: 10.33.0.0\/24/' "$EXAMPLES/quickstart.yaml" >"$WORK/new.yaml"
mv "$WORK/new.yaml" "$T"
until_ok addr_is alpha 10.33.0.2
settled

step "drift repaired without a file change: veth deleted"
ip link del "$(ip -o link | grep -o 've-[0-9a-f]*' | head -1)"
until_ok "$CNM" plan --detailed-exitcode "$T"
reach alpha beta

step "drift repaired without a file change: address flushed"
ip netns exec quick-beta ip addr flush dev eth0
until_ok addr_is beta 10.33.0.3
until_ok "$CNM" plan --detailed-exitcode "$T"
reach beta alpha
grep 'reason="drift' "$LOG" >/dev/null || fail "no drift repair in the log"
grep 'op="create" object=endpoint' "$LOG" >/dev/null || fail "no per-change log line"

# (Repair latency, about 50 ms here, is measured by bench/watch-latency.sh;
# the test allows 5 s, as CI runs every test at once.)
step "drift of every kind is repaired: nft tables (host, and the port-53 redirect in a sandbox), files, sysctls"
nft flush table inet cnm-quick
until_ok "$CNM" plan --detailed-exitcode "$T"
nft delete table inet cnm-quick
until_ok "$CNM" plan --detailed-exitcode "$T"
echo "10.9.9.9 evil" >>/etc/netns/quick-alpha/hosts
until_ok "$CNM" plan --detailed-exitcode "$T"
grep -q evil /etc/netns/quick-alpha/hosts && fail "hosts edit not repaired"
rm /etc/netns/quick-beta/resolv.conf
until_ok "$CNM" plan --detailed-exitcode "$T"
echo 0 >/proc/sys/net/ipv4/ip_forward
until_ok "$CNM" plan --detailed-exitcode "$T"
[ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ] || fail "ip_forward not repaired"
# The port-53 redirect inside a sandbox (resync is 30 s: an event did it).
ip netns exec quick-alpha nft delete table ip cnm-dns
until_ok "$CNM" plan --detailed-exitcode "$T"
redirected() { ip netns exec quick-alpha nft list table ip cnm-dns 2>/dev/null | grep "dnat to 127.0.0.11" >/dev/null; }  # no -q: a pipe closed early fails under pipefail
for _ in $(seq 100); do redirected && break; sleep 0.1; done
redirected || {
  tail -20 "$LOG" >&2; ip netns exec quick-alpha nft list ruleset >&2
  "$CNM" plan "$T" >&2; fail "the redirect table was not repaired"
}
ip netns exec quick-beta nft flush chain ip cnm-dns output
until_ok "$CNM" plan --detailed-exitcode "$T"
grep -q "nftables table cnm-dns changed in quick-alpha" "$LOG" || fail "no event for the redirect table in the log"

step "a second watcher for the same topology refuses; a manual apply warns"
cp "$T" "$WORK/other.yaml"
set +e
timeout 10 "$CNM" watch "$WORK/other.yaml" >"$WORK/w2.out" 2>&1; rc=$?
set -e
[ "$rc" = 1 ] || fail "second watcher exited $rc: $(cat "$WORK/w2.out")"
grep >/dev/null "topology quick is already kept by cnm watch (pid $W)" "$WORK/w2.out" || fail "refusal: $(cat "$WORK/w2.out")"
expect_rc 0 cnm apply "$T"
grep >/dev/null "warning: topology quick is kept by cnm watch (pid $W)" "$WORK/err" || fail "no warning: $(cat "$WORK/err")"

step "a manual destroy of the watched topology warns and leaves the watcher's claim"
expect_rc 0 cnm destroy "$T"
grep >/dev/null "warning: topology quick is kept by cnm watch (pid $W)" "$WORK/err" || fail "destroy did not warn: $(cat "$WORK/err")"
expect_rc 0 cnm status --topology quick
grep >/dev/null "topology quick: watched by cnm watch (pid $W)" "$WORK/out" || fail "status after destroy: $(cat "$WORK/out")"
set +e
timeout 10 "$CNM" watch "$WORK/other.yaml" >"$WORK/w2.out" 2>&1; rc=$?
set -e
[ "$rc" = 1 ] || fail "a second watcher after the destroy exited $rc: $(cat "$WORK/w2.out")"
grep >/dev/null "topology quick is already kept by cnm watch (pid $W)" "$WORK/w2.out" || fail "refusal after destroy: $(cat "$WORK/w2.out")"
# The watcher keeps the file: it builds everything again.
until_ok test -e /run/netns/quick-alpha
settled
reach alpha beta

step "a topology renamed in the file is pruned, the new one applied"
sed -i 's/^name: quick/name: quick2/' "$T"
until_ok test -e /run/netns/quick2-alpha
settled
until_ok sh -c '! ip netns list | grep -q "^quick-"'
grep -q br-quick-lan <<<"$(ip -o link)" && fail "old bridge left"
grep >/dev/null "no longer in" "$LOG" || fail "prune not logged"
reach alpha beta
[ -z "$(ls /run/cnm/topologies | grep -x quick)" ] || fail "records of the old topology left"

step "SIGTERM: prompt exit 0, network in place"
kill -TERM "$W"
for _ in $(seq 1 40); do kill -0 "$W" 2>/dev/null || break; sleep 0.05; done
kill -0 "$W" 2>/dev/null && fail "watch did not stop within 2 s of SIGTERM"
wait "$W" && rc=0 || rc=$?
[ "$rc" = 0 ] || fail "watch exited $rc on SIGTERM"
converged "$T"
reach alpha beta
expect_rc 0 cnm status --topology quick2
grep >/dev/null "topology quick2: not watched" "$WORK/out" || fail "status after the watcher stopped: $(cat "$WORK/out")"
grep >/dev/null "last apply: converged" "$WORK/out" || fail "status lost the last apply: $(cat "$WORK/out")"

step "a ConfigMap-style mount: the ..data link swapped atomically is a change"
M="$WORK/cm"
mkdir -p "$M/v1" "$M/v2"
printf 'version: 1\nname: cm\nnetworks:\n  n: { subnet: 10.123.0.0/24 }\nsandboxes: { x: {} }\nendpoints:\n  x-n: { network: n, sandbox: x }\n' >"$M/v1/t.yaml"
sed 's/10.123.0.0/10.124.0.0/' "$M/v1/t.yaml" >"$M/v2/t.yaml"
ln -s v1 "$M/..data"
ln -s ..data/t.yaml "$M/t.yaml"
LOG="$WORK/watch-cm.log"
"$CNM" watch "$M/t.yaml" 2>"$LOG" & W=$!
until_ok sh -c 'ip netns exec cm-x ip -o -4 addr | grep -q "10.123.0.2/"'
ln -s v2 "$M/..data_tmp"
mv -T "$M/..data_tmp" "$M/..data"
until_ok sh -c 'ip netns exec cm-x ip -o -4 addr | grep -q "10.124.0.2/"'
kill -TERM "$W"; wait "$W" || true
expect_rc 0 cnm destroy --topology cm
expect_rc 0 cnm destroy --topology quick2
echo "PASS"
