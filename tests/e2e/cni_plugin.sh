#!/usr/bin/env bash
# cnm as a CNI plugin, driven by a small runtime written in the test from
# the CNI spec (cni_runtime.py, not cnm's code), chained with Debian's
# reference plugins portmap and tuning: ADD/CHECK/DEL/STATUS/GC/VERSION,
# a published port reached from an outside namespace through portmap on
# cnm's result, idempotent DEL, DEL after the namespace is gone, GC, ten
# concurrent ADDs, a bad configuration's error object.
source "$(dirname "$0")/lib.sh"
RT="python3 $(dirname "$0")/cni_runtime.py"
mkdir -p "$WORK/bin"
ln -s "$CNM" "$WORK/bin/cnm"
export CNI_PATH="$WORK/bin:/usr/lib/cni"
[ -x /usr/lib/cni/portmap ] || fail "Debian's containernetworking-plugins is not installed"

cat >"$WORK/pods.conflist" <<'JSON'
{ "cniVersion": "1.0.0", "name": "pods",
  "plugins": [
    { "type": "cnm", "network": { "subnet": "10.160.0.0/24" } },
    { "type": "portmap", "capabilities": { "portMappings": true } },
    { "type": "tuning", "sysctl": { "net.ipv4.conf.eth0.accept_local": "1" } } ] }
JSON
L="$WORK/pods.conflist"
C1=0123456789abcdef0123456789abcdef
C2=fedcba9876543210fedcba9876543210

step "VERSION: cnm speaks 0.4.0, 1.0.0 and 1.1.0"
$RT version "$L" >"$WORK/versions"
head -1 "$WORK/versions" | python3 -c 'import json,sys; v=json.load(sys.stdin)["supportedVersions"]; assert all(x in v for x in ["0.4.0","1.0.0","1.1.0"]), v'

step "ADD two containers through cnm, portmap and tuning"
ip netns add c1; ip netns add c2
PORTS='{"portMappings":[{"hostPort":8092,"containerPort":80,"protocol":"tcp"}]}'
$RT add "$L" "$C1" /run/netns/c1 eth0 --runtime-config "$PORTS" >"$WORK/r1" \
  || { cat "$WORK/r1"; fail "ADD c1 failed"; }
$RT add "$L" "$C2" /run/netns/c2 eth0 >"$WORK/r2" || { cat "$WORK/r2"; fail "ADD c2 failed"; }
python3 - "$WORK/r1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["cniVersion"] == "1.0.0", r
ifs = r["interfaces"]
c = [i for i, x in enumerate(ifs) if x.get("sandbox") == "/run/netns/c1"]
assert len(c) == 1 and ifs[c[0]]["name"] == "eth0", ifs
assert any("sandbox" not in x for x in ifs), "no host-side interface"
ip = r["ips"][0]
assert ip["address"] == "10.160.0.2/24" and ip["gateway"] == "10.160.0.1" and ip["interface"] == c[0], ip
assert any(x["dst"] == "0.0.0.0/0" and x.get("gw") == "10.160.0.1" for x in r["routes"]), r["routes"]
PY
[ "$(ip netns exec c1 cat /proc/sys/net/ipv4/conf/eth0/accept_local)" = 1 ] || fail "tuning did not run on cnm's result"
ip netns exec c1 ping -c1 -W2 -q 10.160.0.3 >/dev/null || fail "c1 cannot reach c2"
"$CNM" show --topology cni-pods >"$WORK/show"
grep -q "container_id: $C1" "$WORK/show" || { cat "$WORK/show"; fail "show lacks the full container ID"; }
grep -q "container_id: $C2" "$WORK/show" || fail "show lacks c2's container ID"

step "a published port reached from an outside namespace through portmap"
ip netns add out
ip link add up0 type veth peer name up0-out
ip link set up0-out netns out
ip addr add 192.168.77.1/24 dev up0; ip link set up0 up
ip -n out addr add 192.168.77.2/24 dev up0-out; ip -n out link set up0-out up; ip -n out link set lo up
ip netns exec c1 socat TCP-LISTEN:80,reuseaddr,fork SYSTEM:'echo hello-from-c1' &
for _ in $(seq 50); do ip netns exec c1 ss -ltn | grep -q ':80 ' && break; sleep 0.1; done
got=$(ip netns exec out socat -T3 - TCP:192.168.77.1:8092 </dev/null || true)
[ "$got" = hello-from-c1 ] || { iptables-save | grep -i cni || true; nft list ruleset; fail "port 8092 through portmap: got '$got'"; }

step "CHECK passes; a flushed address fails it, plan finds it, apply repairs it"
$RT check "$L" "$C1" /run/netns/c1 eth0 >"$WORK/out" || { cat "$WORK/out"; fail "CHECK of a fresh attachment failed"; }
ip netns exec c1 ip addr flush dev eth0
if $RT check "$L" "$C1" /run/netns/c1 eth0 >"$WORK/out"; then fail "CHECK passed a flushed address"; fi
python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); assert e["code"] >= 100 and "eth0" in e["msg"], e' "$WORK/out" \
  || { cat "$WORK/out"; fail "CHECK's error object"; }
expect_rc 2 "$CNM" plan --topology cni-pods --detailed-exitcode
expect_rc 0 "$CNM" apply --topology cni-pods
$RT check "$L" "$C1" /run/netns/c1 eth0 >"$WORK/out" || { cat "$WORK/out"; fail "CHECK after repair"; }

step "DEL is idempotent"
$RT del "$L" "$C2" /run/netns/c2 eth0 || fail "DEL c2"
$RT del "$L" "$C2" /run/netns/c2 eth0 || fail "second DEL c2"
ip netns exec c2 ip link show eth0 >/dev/null 2>&1 && fail "c2 keeps eth0 after DEL"

step "DEL after the namespace is gone"
ip netns add c3
$RT add "$L" c3 /run/netns/c3 eth0 >/dev/null || fail "ADD c3"
ip netns del c3
$RT del "$L" c3 /run/netns/c3 eth0 || fail "DEL after the namespace went"
"$CNM" show --topology cni-pods -o json | grep -q '"c3-eth0"' && fail "c3 still recorded"

step "STATUS and GC (1.1.0)"
sed 's/"1.0.0"/"1.1.0"/' "$L" | python3 -c '
import json,sys; c=json.load(sys.stdin); c["plugins"]=[p for p in c["plugins"] if p["type"]=="cnm"]; print(json.dumps(c))' >"$WORK/v11.conflist"
$RT status "$WORK/v11.conflist" || fail "STATUS"
ip netns add c4; ip netns add c5
$RT add "$WORK/v11.conflist" c4 /run/netns/c4 eth0 >/dev/null || fail "ADD c4"
$RT add "$WORK/v11.conflist" c5 /run/netns/c5 eth0 >/dev/null || fail "ADD c5"
$RT gc "$WORK/v11.conflist" --valid "$C1/eth0" c4/eth0 || fail "GC"
ip netns exec c5 ip link show eth0 >/dev/null 2>&1 && fail "GC left c5's interface"
ip netns exec c4 ip link show eth0 >/dev/null || fail "GC removed c4, a valid attachment"
"$CNM" show --topology cni-pods >"$WORK/show"
grep -q 'container_id: c5' "$WORK/show" && fail "GC left c5 in the records"

step "ten concurrent ADDs: all succeed, distinct addresses"
pids=()
for i in $(seq 0 9); do
  ip netns add "p$i"
  $RT add "$WORK/v11.conflist" "par$i" "/run/netns/p$i" eth0 >"$WORK/par$i" 2>"$WORK/par$i.err" & pids+=($!)
done
for i in "${!pids[@]}"; do wait "${pids[$i]}" || { cat "$WORK/par$i" "$WORK/par$i.err"; fail "concurrent ADD $i failed"; }; done
addrs=$(for i in $(seq 0 9); do python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ips"][0]["address"])' "$WORK/par$i"; done | sort -u | wc -l)
[ "$addrs" = 10 ] || fail "ten ADDs got $addrs distinct addresses"
ip netns exec p0 ping -c1 -W2 -q "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ips"][0]["address"].split("/")[0])' "$WORK/par9")" >/dev/null \
  || fail "p0 cannot reach p9"

step "a 0.4.0 configuration gets a 0.4.0 result"
cat >"$WORK/old.conflist" <<'JSON'
{ "cniVersion": "0.4.0", "name": "old", "plugins": [ { "type": "cnm", "network": { "subnet": "10.161.0.0/24" } } ] }
JSON
ip netns add o1
$RT add "$WORK/old.conflist" o1 /run/netns/o1 eth0 >"$WORK/r"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["cniVersion"]=="0.4.0" and r["ips"][0]["version"]=="4", r' "$WORK/r" \
  || { cat "$WORK/r"; fail "0.4.0 result"; }
$RT del "$WORK/old.conflist" o1 /run/netns/o1 eth0 || fail "DEL o1"
[ ! -e /var/lib/cnm/topologies/cni-old ] || fail "the last DEL left cni-old's records"

step "a bad configuration: an error object naming the key, nothing else on stdout"
ip netns add bad
set +e
echo '{"cniVersion":"1.0.0","name":"bad","type":"cnm","network":{"subnet":"10.162.0.0/33"}}' |
  CNI_COMMAND=ADD CNI_CONTAINERID=b1 CNI_NETNS=/run/netns/bad CNI_IFNAME=eth0 "$CNM" >"$WORK/out" 2>"$WORK/err"
rc=$?
set -e
[ "$rc" != 0 ] || fail "a bad configuration was accepted"
python3 -c 'import json,sys; e=json.load(open(sys.argv[1])); assert e["code"]==7 and "subnet" in e["msg"], e' "$WORK/out" \
  || { cat "$WORK/out"; fail "the error object"; }
[ "$(wc -l <"$WORK/out")" = 1 ] || fail "stdout holds more than the error object"
echo '{"cniVersion":"0.3.1","name":"old","type":"cnm"}' |
  CNI_COMMAND=ADD CNI_CONTAINERID=b1 CNI_NETNS=/run/netns/bad CNI_IFNAME=eth0 "$CNM" >"$WORK/out" 2>/dev/null && fail "0.3.1 accepted"
grep -q '"code":1' "$WORK/out" || fail "an unsupported version is not code 1: $(cat "$WORK/out")"
[ ! -e /var/lib/cnm/topologies/cni-bad ] || fail "a refused ADD left records"

step "DEL of every attachment leaves nothing of cnm's"
# As libcni does, DEL gets the runtime config ADD got (portmap needs it).
$RT del "$L" "$C1" /run/netns/c1 eth0 --runtime-config "$PORTS" || fail "DEL c1"
$RT del "$WORK/v11.conflist" c4 /run/netns/c4 eth0 || fail "DEL c4"
for i in $(seq 0 9); do $RT del "$WORK/v11.conflist" "par$i" "/run/netns/p$i" eth0 || fail "DEL par$i"; done
[ -z "$(find /var/lib/cnm/topologies /run/cnm/topologies -mindepth 1 2>/dev/null)" ] || fail "records left: $(ls -R /var/lib/cnm /run/cnm)"
ip -o link | grep -q 'cnm\|ve-' && { ip -o link; fail "links left"; }
nft list tables | grep -q cnm && fail "cnm's firewall tables left"
iptables-save | grep 'CNI-DN-' && fail "portmap's rules left after DEL"
step "cnm watch --topology cni-pods repairs drift, and outlives the last DEL"
cnm_add() { ip netns add "$1"; $RT add "$WORK/v11.conflist" "$1" "/run/netns/$1" eth0 >/dev/null || fail "ADD $1"; }
repaired() { # NETNS: the address flushed by hand comes back
  ip netns exec "$1" ip addr flush dev eth0
  for _ in $(seq 100); do
    ip netns exec "$1" ip -br addr show eth0 | grep -q '10.160.0.' && return 0
    sleep 0.1
  done
  fail "the watcher did not repair $1"
}
cnm_add w1
"$CNM" watch --topology cni-pods --resync 2s >"$WORK/watch.log" 2>&1 &
WATCH=$!
sleep 1
repaired w1
$RT del "$WORK/v11.conflist" w1 /run/netns/w1 eth0 || fail "DEL w1"
sleep 1
kill -0 "$WATCH" || { cat "$WORK/watch.log"; fail "the watcher ended with its topology"; }
cnm_add w2
sleep 1
repaired w2
kill "$WATCH"; wait "$WATCH" || true
$RT del "$WORK/v11.conflist" w2 /run/netns/w2 eth0 || fail "DEL w2"
[ -z "$(find /var/lib/cnm/topologies /run/cnm/topologies -mindepth 1 2>/dev/null)" ] || fail "records left after the watcher"
echo PASS
