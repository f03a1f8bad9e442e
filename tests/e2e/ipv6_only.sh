# ipv4: false (Docker's --ipv4=false): an IPv6-only network. No IPv4
# subnet, gateway, address or route anywhere; peers reach each other and
# resolve each other over IPv6; IPv4 keys with it are refused.
source "$(dirname "$0")/lib.sh"

T="$WORK/v6.yaml"
cat >"$T" <<'YAML'
version: 1
name: six
networks:
  v6net:
    ipv4: false
    ipv6: { subnet: "fd00:66::/64" }
sandboxes: { a: {}, b: {} }
endpoints:
  a-v6: { network: v6net, sandbox: a, aliases: [alpha] }
  b-v6: { network: v6net, sandbox: b, ipv6_address: "fd00:66::20" }
YAML

step "apply: IPv6 addresses only"
cnm apply "$T" >/dev/null
converged "$T"
ip netns exec six-a ip -o -6 addr show eth0 scope global | grep >/dev/null 'fd00:66::' || fail "a has no IPv6 address"
[ -z "$(ip netns exec six-a ip -o -4 addr show eth0)" ] || fail "a has an IPv4 address"
[ -z "$(ip netns exec six-a ip -4 route)" ] || fail "a has IPv4 routes"
ip netns exec six-a ip -6 route show default | grep >/dev/null 'via fd00:66::1' || fail "a has no IPv6 default route"
ip -o link show br-six-v6net >/dev/null || fail "no bridge br-six-v6net"
[ -z "$(ip -o -4 addr show dev br-six-v6net)" ] || fail "the bridge has an IPv4 address"
if grep -vE '^(#|127\.)' /etc/netns/six-a/hosts | grep >/dev/null -E '^[0-9]+\.[0-9]+\.'; then fail "hosts names an IPv4 address"; fi

step "traffic and names over IPv6"
for _ in 1 2 3 4 5; do "$CNM" exec a -- ping -6 -c1 -W1 -q b >/dev/null 2>&1 && break; sleep 0.5; done
"$CNM" exec a -- ping -6 -c1 -W2 -q b >/dev/null || fail "a cannot reach b over IPv6"
"$CNM" exec b -- ping -6 -c1 -W2 -q alpha >/dev/null || fail "b cannot reach alpha"
# The bridge's address may still be tentative (DAD) for a moment.
for _ in 1 2 3 4 5; do ping -6 -c1 -W1 -q fd00:66::20 >/dev/null 2>&1 && break; sleep 0.5; done
ping -6 -c1 -W2 -q fd00:66::20 >/dev/null || fail "the host cannot reach b"
if command -v dig >/dev/null; then
  got=$(ip netns exec six-a dig +short +time=2 +tries=2 @127.0.0.11 b AAAA)
  [ "$got" = fd00:66::20 ] || fail "a does not resolve b to fd00:66::20: '$got'"
fi

step "IPv4 keys with ipv4: false are refused"
before=$(snapshot)
bad() { expect_rc 1 cnm plan "$1"; grep -q "$2" "$WORK/err" || { cat "$WORK/err"; fail "no error '$2'"; }; }
sed 's|    ipv6: { subnet: "fd00:66::/64" }||' "$T" >"$WORK/b1.yaml"
bad "$WORK/b1.yaml" "ipv4: false needs ipv6"
sed 's|    ipv4: false|    ipv4: false\n    subnet: 10.1.0.0/24|' "$T" >"$WORK/b2.yaml"
bad "$WORK/b2.yaml" "subnet is IPv4 addressing"
sed 's|sandbox: a, aliases|sandbox: a, address: 10.1.0.5, aliases|' "$T" >"$WORK/b3.yaml"
bad "$WORK/b3.yaml" "has ipv4: false"
[ "$(snapshot)" = "$before" ] || fail "refused files changed the kernel"
cnm destroy "$T" >/dev/null
echo PASS
