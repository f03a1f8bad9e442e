# Apply the two-tier example; real traffic between sandboxes that share a
# network, by address and by name; none between sandboxes that share none.
source "$(dirname "$0")/lib.sh"
T="$EXAMPLES/two-tier.yaml"

step "apply"
expect_rc 0 cnm apply "$T"
grep -q "Apply complete" "$WORK/out" || fail "no completion line"
converged "$T"

step "ping by address and by name on a shared network"
reach web 10.20.0.5
reach web db
reach web database
reach db web
reach db backend
reach web api

step "hosts and resolv.conf inside the sandbox (the embedded resolver names the peers)"
grep -q "10.20.0.5" <<<"$("$CNM" exec web -- getent hosts database)" || fail "web does not resolve db's alias"
"$CNM" exec web -- cat /etc/hosts | grep >/dev/null "10.20.0.5" && fail "web's hosts lists a peer (the resolver names them)"
"$CNM" exec web -- cat /etc/hosts | grep >/dev/null "web.shop.local web" || fail "web's hosts lacks its own names"
"$CNM" exec web -- cat /etc/resolv.conf | grep >/dev/null "^nameserver 127.0.0.11$" || fail "web's resolv.conf does not name the resolver"
"$CNM" exec api -- getent ahostsv4 www | grep >/dev/null 10.10.0.10 || fail "api cannot resolve web's alias www"
if "$CNM" exec db -- getent hosts www >/dev/null; then fail "db resolves www but shares no network with web-front"; fi

step "addresses, MAC and routes are what the plan said"
ip netns exec shop-web ip -o addr show eth1 | grep >/dev/null "10.10.0.10/24" || fail "web-front address"
ip netns exec shop-web ip link show eth1 | grep >/dev/null "02:42:0a:0a:00:0a" || fail "web-front mac"
ip netns exec shop-web ip route | grep >/dev/null "default via 10.10.0.1 dev eth1" || fail "web default route"
ip netns exec shop-db ip route | grep >/dev/null default && fail "db on an internal network only has a default route" || true
ip netns exec shop-api ip -o addr show | grep >/dev/null "10.10.0.128/24" || fail "api-front should get the first address of ip_range"
ip netns exec shop-api ip -o addr show | grep >/dev/null "fd00:10::2/64" || fail "api-front should get an IPv6 address"
reach api fd00:10::1

step "cnm graph --observed draws what is applied, with the addresses the kernel has"
expect_rc 0 cnm graph --observed "$T"
for want in '"sandbox:web" -- "network:front"' 'web-front\n10.10.0.10' 'db-back\n10.20.0.5' 'port 8080:80/tcp' 'back\nbridge, internal'; do
  grep -F >/dev/null "$want" "$WORK/out" || fail "graph --observed lacks $want: $(cat "$WORK/out")"
done
expect_rc 1 cnm graph --observed "$EXAMPLES/quickstart.yaml"
grep >/dev/null "not applied" "$WORK/err" || fail "graph --observed of a topology not applied: $(cat "$WORK/err")"

step "no reachability between sandboxes that share no network"
expect_rc 0 cnm apply "$EXAMPLES/quickstart.yaml"
unreachable alpha 10.20.0.5
unreachable db 10.88.0.2
echo "PASS"
