# Overlay across three hosts from one file: each host applies the same file
# with --host; sandboxes reach each other across hosts by address and by
# name; every FDB entry points at the right VTEP; a sandbox added later is
# reachable once every host re-applies; destroy per host leaves nothing.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../support/multihost.sh"
T="$EXAMPLES/overlay.yaml"
declare -A HOST_OF=([web]=h1 [api]=h2 [db]=h3)

mh_up 3
for h in h1 h2 h3; do
  on "$h" bash -c "$(declare -f snapshot); snapshot" >"$WORK/before-$h"
done

in_sb() { local sb=$1; shift; on "${HOST_OF[$sb]}" "$CNM" exec "$sb" -- "$@"; }
# Three tries, as lib.sh's reach(): on a loaded machine a first neighbour
# resolution can outlast one second.
reach_x() {
  for _ in 1 2 3; do in_sb "$1" ping -c1 -W1 -q "$2" >/dev/null 2>&1 && return 0; done
  fail "$1 (on ${HOST_OF[$1]}) cannot reach $2"
}
unreach_x() { if in_sb "$1" ping -c1 -W1 -q "$2" >/dev/null 2>&1; then fail "$1 reaches $2 but should not"; fi; }
addr_of() { on "${HOST_OF[$1]}" ip netns exec "lab-$1" ip -o -4 addr show dev "$2" | awk '{print $4}' | cut -d/ -f1; }
mac_of() { on "${HOST_OF[$1]}" ip netns exec "lab-$1" cat "/sys/class/net/$2/address"; }
apply_on() { for h in "$@"; do expect_rc 0 on "$h" "$CNM" apply "$T" --host "$h"; done; }
converged_all() { for h in h1 h2 h3; do expect_rc 0 on "$h" "$CNM" plan --detailed-exitcode "$T" --host "$h"; done; }

# Every sandbox pings every other, by name over IPv4 and IPv6.
matrix() {
  for a in web api db; do
    for b in web api db; do
      [ "$a" = "$b" ] && continue
      reach_x "$a" "$b"
      in_sb "$a" ping -6 -c1 -W1 -q "$b" >/dev/null 2>&1 || fail "$a cannot reach $b over IPv6"
    done
  done
}

step "a host must be named or found"
expect_rc 1 "$CNM" plan "$T"
grep >/dev/null -- "--host" "$WORK/err" || fail "no hint about --host: $(cat "$WORK/err")"
expect_rc 1 on h1 "$CNM" plan "$T" --host h9
grep >/dev/null "h1, h2, h3" "$WORK/err" || fail "unknown --host not explained"

step "apply h1, h2, h3 in turn: each host's peers need nothing from the others"
apply_on h1
grep >/dev/null "vxlan vx-lab-ov, vni 5000" "$WORK/out" || fail "plan lacks the vxlan device"
apply_on h2 h3
converged_all
matrix
expect_rc 0 on h2 "$CNM" plan --detailed-exitcode "$T"   # found by its address

step "TCP across hosts"
# Bounded and detached from our output: a leftover server must not hold
# the test's pipes open.
on h3 ip netns exec lab-db timeout 20 socat TCP-LISTEN:5432,reuseaddr,fork EXEC:'echo pong' >/dev/null 2>&1 &
ok=
for _ in 1 2 3 4 5 6 7 8 9 10; do
  if in_sb web socat -T2 - TCP:db:5432,connect-timeout=1 </dev/null 2>/dev/null | grep >/dev/null pong; then ok=1; break; fi
  sleep 0.2
done
[ -n "$ok" ] || fail "TCP web→db across hosts"
on h3 ip netns exec lab-db pkill -f 'TCP-LISTEN:5432' || true

step "each remote MAC's FDB entry points at its host's VTEP, on every host"
for sb in web api db; do
  mac=$(mac_of "$sb" eth0)
  [ "$sb" = web ] && mac=$(mac_of web eth1)
  vtep=${MH_IP[${HOST_OF[$sb]}]}
  for h in h1 h2 h3; do
    [ "$h" = "${HOST_OF[$sb]}" ] && continue
    on "$h" bridge fdb show dev vx-lab-ov | grep >/dev/null "^$mac dst $vtep self permanent" \
      || fail "$h: no fdb entry $mac → $vtep"
    on "$h" bridge fdb show dev vx-lab-ov | grep >/dev/null "^00:00:00:00:00:00 dst $vtep self permanent" \
      || fail "$h: no flood entry → $vtep"
  done
done
on h1 ip -d link show vx-lab-ov | grep >/dev/null "vxlan id 5000 local 192.168.100.11.*dstport 4789.*nolearning.*proxy" \
  || fail "vxlan settings: $(on h1 ip -d link show vx-lab-ov)"
on h1 ip link show vx-lab-ov | grep >/dev/null "mtu 1450" || fail "overlay MTU is not underlay - 50"

step "drift: FDB and neighbour entries removed by hand show in plan and are repaired"
db_mac=$(mac_of db eth0)
on h1 bridge fdb del "$db_mac" dev vx-lab-ov dst "${MH_IP[h3]}" self
on h1 ip neigh del 10.50.0.5 dev vx-lab-ov
on h1 bridge fdb append 02:42:0a:32:00:99 dev vx-lab-ov dst 192.168.100.99 self permanent
expect_rc 2 on h1 "$CNM" plan --detailed-exitcode "$T" --host h1
grep >/dev/null "+ fdb vx-lab-ov: $db_mac → ${MH_IP[h3]}" "$WORK/out" || fail "plan misses the fdb entry: $(cat "$WORK/out")"
grep >/dev/null "+ neighbour vx-lab-ov: 10.50.0.5 → $db_mac" "$WORK/out" || fail "plan misses the neighbour"
grep >/dev/null -- "- fdb vx-lab-ov: 02:42:0a:32:00:99 → 192.168.100.99" "$WORK/out" || fail "plan misses the stray fdb entry"
apply_on h1
converged_all
reach_x web 10.50.0.5

step "drift: a deleted VXLAN device and one with learning turned on are rebuilt with their entries"
on h2 ip link del vx-lab-ov
on h3 ip link set vx-lab-ov type vxlan learning
expect_rc 2 on h2 "$CNM" plan --detailed-exitcode "$T" --host h2
grep >/dev/null "+ network ov (vxlan vx-lab-ov, vni 5000)" "$WORK/out" || fail "plan misses the vxlan: $(cat "$WORK/out")"
grep >/dev/null "+ fdb vx-lab-ov: flood → ${MH_IP[h1]}" "$WORK/out" || fail "plan misses the flood entry"
expect_rc 2 on h3 "$CNM" plan --detailed-exitcode "$T" --host h3
grep >/dev/null "! network ov (vxlan vx-lab-ov, vni 5000) (its VXLAN settings changed)" "$WORK/out" || fail "plan misses the replace: $(cat "$WORK/out")"
grep >/dev/null "learning: true → false" "$WORK/out" || fail "plan does not say why"
apply_on h2 h3
converged_all
matrix

step "SIGKILL at random moments of an overlay apply: the next apply converges, nothing leaks"
for i in 1 2 3 4 5 6 7 8; do
  expect_rc 0 on h1 "$CNM" destroy "$T"
  on_bg h1 "$CNM" apply "$T" --host h1 >/dev/null 2>&1
  sleep "0.0$((RANDOM % 10))"
  kill -KILL "$MH_LAST_BG" 2>/dev/null || true
  wait "$MH_LAST_BG" 2>/dev/null || true
done
apply_on h1
converged_all
[ "$(on h1 ip -o link show type vxlan | wc -l)" = 1 ] || fail "h1: vxlan devices leaked: $(on h1 ip -o link show type vxlan)"
[ "$(on h1 ip -o link show type bridge | wc -l)" = 2 ] || fail "h1: bridges leaked"
matrix

step "show reports the overlay network"
on h1 "$CNM" show --topology lab >"$WORK/show"
grep >/dev/null "driver: overlay" "$WORK/show" || fail "show: $(cat "$WORK/show")"
grep >/dev/null "vni: 5000" "$WORK/show" || fail "show lacks the vni"
grep >/dev/null "^hosts:" "$WORK/show" || fail "show lacks hosts:"
for h in h1 h3; do
  on "$h" "$CNM" show --topology lab >"$WORK/show-$h.yaml"
  expect_rc 0 on "$h" "$CNM" plan --detailed-exitcode "$WORK/show-$h.yaml"
done
# Applied without --host (the host found by its address): show still
# knows which sandboxes are here and which are the other hosts'.
expect_rc 0 on h2 "$CNM" apply "$T"
on h2 "$CNM" show --topology lab >"$WORK/show-h2.yaml"
grep >/dev/null "host: h1" "$WORK/show-h2.yaml" || fail "show without --host dropped the other hosts: $(cat "$WORK/show-h2.yaml")"
expect_rc 0 on h2 "$CNM" plan --detailed-exitcode "$WORK/show-h2.yaml"

step "a sandbox added later on h2 is reachable from the others once each re-applies"
sed -e 's/^sandboxes:$/sandboxes:\n  cache: { host: h2 }/' \
    -e 's/^endpoints:$/endpoints:\n  cache-ov: { network: ov, sandbox: cache }/' "$T" >"$WORK/grown.yaml"
T_OLD=$T T="$WORK/grown.yaml"
HOST_OF[cache]=h2
apply_on h2
cache_ip=$(addr_of cache eth0)
[ -n "$cache_ip" ] || fail "cache has no address"
reach_x api "$cache_ip"
expect_rc 2 on h1 "$CNM" plan --detailed-exitcode "$T" --host h1
unreach_x web "$cache_ip"   # h1 knows nothing of cache yet: no neighbour, no fdb
apply_on h1 h3
converged_all
for sb in web api db; do reach_x "$sb" cache; done
reach_x cache web

step "destroy per host leaves no vxlan, bridge, entries or namespaces"
for h in h1 h2 h3; do
  expect_rc 0 on "$h" "$CNM" destroy "$T" --host "$h"
  [ -z "$(on "$h" ip -o link show type vxlan)" ] || fail "$h: vxlan left"
  [ -z "$(on "$h" ip -o link show type bridge)" ] || fail "$h: bridge left"
  [ -z "$(on "$h" ip netns list)" ] || fail "$h: namespaces left"
  on "$h" bash -c "$(declare -f snapshot); snapshot" >"$WORK/after-$h"
  diff "$WORK/before-$h" "$WORK/after-$h" >&2 || fail "$h: state differs after destroy"
done

step "apply in another order (h3, h1, h2) converges to the same traffic"
T=$T_OLD
unset 'HOST_OF[cache]'
apply_on h3 h1 h2
converged_all
matrix

step "one cnm watch --host per host: a sandbox added to the shared file is reachable everywhere"
W="$WORK/lab.yaml"
cp "$T" "$W"
T=$W
WATCHERS=()
for h in h1 h2 h3; do
  on_bg "$h" "$CNM" watch "$W" --host "$h" >"$WORK/watch-$h.log" 2>&1
  WATCHERS+=("$MH_LAST_BG")
done
stop_watchers() { local p; for p in "${WATCHERS[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
within() { local i; for i in $(seq 1 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
sed -e 's/^sandboxes:$/sandboxes:\n  cache: { host: h2 }/' \
    -e 's/^endpoints:$/endpoints:\n  cache-ov: { network: ov, sandbox: cache }/' "$W" >"$W.new"
mv "$W.new" "$W"   # as git checkout does: a rename over the file
HOST_OF[cache]=h2
for sb in web api db; do
  within in_sb "$sb" ping -c1 -W1 -q cache || { tail -n 20 "$WORK"/watch-*.log >&2; fail "$sb cannot reach cache within 10 s"; }
done
converged_all
stop_watchers
grep >/dev/null "applied" "$WORK/watch-h1.log" || fail "h1's watch log lacks its change: $(cat "$WORK/watch-h1.log")"
for h in h1 h2 h3; do expect_rc 0 on "$h" "$CNM" destroy "$T"; done
echo "PASS"
