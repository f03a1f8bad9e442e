# Published ports, outbound NAT, isolation, internal networks and icc, with
# real TCP and UDP traffic from an "outside" namespace, the host, 127.0.0.1
# and a sibling sandbox (hairpin).
source "$(dirname "$0")/lib.sh"
T="$WORK/shop.yaml"
# Also publish UDP on every host address.
sed 's|ports: \["8080:80", "127.0.0.1:5353:53/udp"\]|ports: ["8080:80", "127.0.0.1:5353:53/udp", "5300:53/udp"]|' "$EXAMPLES/two-tier.yaml" >"$T"
grep >/dev/null '"5300:53/udp"' "$T" || fail "could not add the UDP port to the test topology"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

# The outside world: a namespace routed to this host over a veth.
ip netns add outside
ip link add ext0 type veth peer name ext1 netns outside
ip addr add 192.0.2.1/24 dev ext0
ip link set ext0 up
ip netns exec outside ip addr add 192.0.2.2/24 dev ext1
ip netns exec outside ip link set ext1 up
ip netns exec outside ip link set lo up
ip netns exec outside ip route add default via 192.0.2.1
nft add table inet foreign
nft add chain inet foreign keep

expect_rc 0 cnm apply "$T"
grep >/dev/null "+ port 0.0.0.0:8080/tcp → web-front 10.10.0.10:80" "$WORK/out" || fail "plan does not list the published port: $(cat "$WORK/out")"
converged "$T"

bg() { "$@" >/dev/null 2>&1 & PIDS+=($!); }
bg "$CNM" exec web -- socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:'echo web-tcp'
bg "$CNM" exec web -- socat UDP-RECVFROM:53,fork,reuseaddr SYSTEM:'echo web-udp'
bg ip netns exec outside socat TCP-LISTEN:9000,fork,reuseaddr SYSTEM:'echo peer=$SOCAT_PEERADDR'
sleep 0.5

tcp() { "$@" socat -T2 - "TCP:$TARGET" </dev/null 2>/dev/null || true; }
expect_answer() { # WANT DESC CMD... (three tries: UDP may drop a datagram)
  local want=$1 desc=$2 got=; shift 2
  for _ in 1 2 3; do
    got=$("$@" 2>/dev/null || true)
    [ "$got" = "$want" ] && return 0
  done
  fail "$desc: wanted '$want', got '$got'"
}
no_answer() {
  local desc=$1; shift
  local got; got=$("$@" 2>/dev/null || true)
  [ -z "$got" ] || fail "$desc: expected no answer, got '$got'"
}

step "TCP published port from outside, the host, 127.0.0.1 and a sibling"
expect_answer web-tcp "outside → 192.0.2.1:8080" ip netns exec outside socat -T2 - TCP:192.0.2.1:8080,connect-timeout=1
expect_answer web-tcp "host → 192.0.2.1:8080" socat -T2 - TCP:192.0.2.1:8080,connect-timeout=1
expect_answer web-tcp "host → 127.0.0.1:8080" socat -T2 - TCP:127.0.0.1:8080
expect_answer web-tcp "api → 192.0.2.1:8080 (hairpin)" "$CNM" exec api -- socat -T2 - TCP:192.0.2.1:8080,connect-timeout=1

step "UDP bound to 127.0.0.1 answers there only"
expect_answer web-udp "host → 127.0.0.1:5353/udp" bash -c 'echo q | socat -T2 - UDP:127.0.0.1:5353'
no_answer "outside → 192.0.2.1:5353/udp" ip netns exec outside bash -c 'echo q | socat -T1 - UDP:192.0.2.1:5353'

step "UDP published on all addresses: from outside, the host, 127.0.0.1 and a sibling"
expect_answer web-udp "outside → 192.0.2.1:5300/udp" ip netns exec outside bash -c 'echo q | socat -T2 - UDP:192.0.2.1:5300'
expect_answer web-udp "host → 192.0.2.1:5300/udp" bash -c 'echo q | socat -T2 - UDP:192.0.2.1:5300'
expect_answer web-udp "host → 127.0.0.1:5300/udp" bash -c 'echo q | socat -T2 - UDP:127.0.0.1:5300'
expect_answer web-udp "api → 192.0.2.1:5300/udp (hairpin)" "$CNM" exec api -- bash -c 'echo q | socat -T2 - UDP:192.0.2.1:5300'

step "outbound traffic is masqueraded"
expect_answer "peer=192.0.2.1" "api → outside" "$CNM" exec api -- socat -T2 - TCP:192.0.2.2:9000,connect-timeout=1

step "an internal network reaches nothing outside"
ip netns exec shop-db ip route add default via 10.20.0.1
no_answer "db → outside" "$CNM" exec db -- socat -T1 - TCP:192.0.2.2:9000,connect-timeout=1
ip netns exec shop-db ip route del default

step "a flushed ruleset is seen by plan and restored by apply"
nft flush table inet cnm-shop
pending "$T"
grep >/dev/null "edited outside cnm" "$WORK/out" || fail "plan does not say the table was edited: $(cat "$WORK/out")"
no_answer "outside → 8080 while flushed" ip netns exec outside socat -T1 - TCP:192.0.2.1:8080,connect-timeout=1
expect_rc 0 cnm apply "$T"
converged "$T"
expect_answer web-tcp "outside → 8080 after repair" ip netns exec outside socat -T2 - TCP:192.0.2.1:8080,connect-timeout=1
nft delete table inet cnm-shop
pending "$T"
expect_rc 0 cnm apply "$T"
converged "$T"

step "changing a port closes the old one"
sed -i 's/"8080:80"/"8081:80"/' "$T"
expect_rc 2 cnm plan --detailed-exitcode "$T"
grep >/dev/null -- "- port 0.0.0.0:8080/tcp → web-front" "$WORK/out" || fail "plan: $(cat "$WORK/out")"
grep >/dev/null -- "+ port 0.0.0.0:8081/tcp → web-front" "$WORK/out" || fail "plan: $(cat "$WORK/out")"
expect_rc 0 cnm apply "$T"
no_answer "old port 8080" ip netns exec outside socat -T1 - TCP:192.0.2.1:8080,connect-timeout=1
expect_answer web-tcp "new port 8081" ip netns exec outside socat -T2 - TCP:192.0.2.1:8081

step "one more port is one map element: the table and its rules stay"
# A rewritten table gets a new handle (the kernel numbers tables anew).
handles() { nft -a list table inet cnm-shop | grep -o 'handle [0-9]*' | sort; }
before=$(handles)
sed -i 's/"8081:80"/"8081:80", "8082:80"/' "$T"
expect_rc 2 cnm plan --detailed-exitcode "$T"
grep >/dev/null -- "+ port 0.0.0.0:8082/tcp → web-front" "$WORK/out" || fail "plan: $(cat "$WORK/out")"
expect_rc 0 cnm apply "$T"
[ "$(handles)" = "$before" ] || fail "the rules were rewritten for one more port: $before → $(handles)"
nft list map inet cnm-shop ports_ip_addr | grep >/dev/null 'tcp \. 8082' || fail "no element for 8082: $(nft list map inet cnm-shop ports_ip_addr)"
expect_answer web-tcp "new port 8082" ip netns exec outside socat -T2 - TCP:192.0.2.1:8082
expect_answer web-tcp "port 8081 still" ip netns exec outside socat -T2 - TCP:192.0.2.1:8081
converged "$T"
# Someone else's transaction moves nftables' generation id: cnm lists its
# tables again, and the fingerprint it updated without listing must match.
nft add table inet other-software
nft delete table inet other-software
converged "$T"
sed -i 's/"8081:80", "8082:80"/"8081:80", "8082:80", "8083:80"/' "$T"
expect_rc 0 cnm apply "$T"
sed -i 's/, "8083:80"//' "$T"
expect_rc 0 cnm apply "$T"
nft add table inet other-software
nft delete table inet other-software
converged "$T"

step "a map element deleted by hand is drift: plan shows it, apply puts it back"
nft delete element inet cnm-shop ports_ip_addr '{ tcp . 8082 }'
nft delete element inet cnm-shop ports_ip_port '{ tcp . 8082 }'
no_answer "8082 without its element" ip netns exec outside socat -T1 - TCP:192.0.2.1:8082,connect-timeout=1
pending "$T"
grep >/dev/null "map elements" "$WORK/out" || fail "plan does not name the elements: $(cat "$WORK/out")"
expect_rc 0 cnm apply "$T"
converged "$T"
expect_answer web-tcp "8082 after repair" ip netns exec outside socat -T2 - TCP:192.0.2.1:8082

step "networks are isolated from each other; icc: false isolates within one"
I="$WORK/iso.yaml"
cat >"$I" <<'YAML'
version: 1
name: iso
networks:
  n1: { subnet: 10.61.0.0/24, options: { icc: false } }
  n2: { subnet: 10.62.0.0/24 }
sandboxes: { a1: {}, a2: {}, b1: {}, b2: {} }
endpoints:
  a1-n1: { network: n1, sandbox: a1 }
  a2-n1: { network: n1, sandbox: a2 }
  b1-n2: { network: n2, sandbox: b1 }
  b2-n2: { network: n2, sandbox: b2 }
YAML
expect_rc 0 cnm apply "$I"
converged "$I"
reach b1 b2
unreachable b1 10.61.0.2
unreachable a1 10.62.0.2
unreachable a1 a2
reach a1 10.61.0.1
reach a1 192.0.2.2

step "destroy removes cnm's tables and leaves foreign ones"
expect_rc 0 cnm destroy "$T"
expect_rc 0 cnm destroy "$I"
nft list tables | grep >/dev/null cnm- && fail "a cnm table survived destroy: $(nft list tables)"
nft list tables | grep >/dev/null "inet foreign" || fail "the foreign table is gone"
echo "PASS"
