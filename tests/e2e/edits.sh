# Edits to the file converge: an address change, an endpoint removed, a
# sandbox added; other objects keep their addresses.
source "$(dirname "$0")/lib.sh"
T="$WORK/topo.yaml"
cp "$EXAMPLES/two-tier.yaml" "$T"
expect_rc 0 cnm apply "$T"
api_addr=$(ip netns exec shop-api ip -o -4 addr show eth1 | awk '{print $4}')

step "address change"
sed -i 's/address: 10.20.0.5/address: 10.20.0.6/' "$T"
expect_rc 2 cnm plan --detailed-exitcode "$T"
grep -q "addresses: 10.20.0.5/24 → 10.20.0.6/24" "$WORK/out" || fail "plan does not show the address change: $(cat "$WORK/out")"
expect_rc 0 cnm apply "$T"
converged "$T"
reach web 10.20.0.6
reach web db
grep -q "10.20.0.6" <<<"$("$CNM" exec web -- getent hosts db)" || fail "the resolver still gives db's old address"

step "address change on the interface that carries the default route"
sed -i 's/address: 10.10.0.10/address: 10.10.0.11/' "$T"
expect_rc 0 cnm apply "$T"
converged "$T"
ip netns exec shop-web ip route | grep >/dev/null "default via 10.10.0.1" || fail "web lost its default route"
reach api 10.10.0.11

step "endpoint removed"
sed -i '/^  web-back:/d' "$T"
expect_rc 0 cnm apply "$T"
converged "$T"
ip netns exec shop-web ip -o addr | grep >/dev/null "10.20.0." && fail "web-back interface still there" || true
unreachable web 10.20.0.6
reach web api

step "sandbox added; others keep their addresses"
cat >>"$T" <<'YAML'
  cache-back: { network: back, sandbox: cache }
YAML
sed -i 's/^  db: {}/  db: {}\n  cache: {}/' "$T"
expect_rc 0 cnm apply "$T"
converged "$T"
[ "$(ip netns exec shop-api ip -o -4 addr show eth1 | awk '{print $4}')" = "$api_addr" ] || fail "api-back moved"
reach cache db
reach cache backend

step "sandbox removed while its endpoint moves to another (the veth is deleted with its namespace, then made again)"
sed -i '/^  cache: {}$/d; s/^  cache-back: { network: back, sandbox: cache }$/  cache-back: { network: back, sandbox: web }/' "$T"
grep -q 'cache-back: { network: back, sandbox: web }' "$T" || fail "could not move cache-back in the test file"
expect_rc 0 cnm apply "$T"
converged "$T"
[ ! -e /run/netns/shop-cache ] || fail "cache's namespace is still there"
reach web db
echo "PASS"
