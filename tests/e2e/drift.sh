# Damage done by hand shows in plan and apply repairs it.
source "$(dirname "$0")/lib.sh"
T="$EXAMPLES/two-tier.yaml"
expect_rc 0 cnm apply "$T"
web_front=$(ip -o link | grep -o 've-[0-9a-f]*' | head -1)

repair() {
  local what=$1
  step "$what"
  pending "$T"
  expect_rc 0 cnm apply "$T"
  converged "$T"
  reach web db
  reach api web
}

ip netns exec shop-db ip addr flush dev eth0
repair "address flushed"
grep -q "10.20.0.5" "$WORK/out" || true

ip link del "$(ip -o link | grep -o 've-[0-9a-f]*' | head -1)"
repair "veth deleted"

ip link del br-front
repair "bridge deleted"

ip netns del shop-db
repair "sandbox namespace deleted"

ip netns exec shop-web ip route del default
repair "default route deleted"

echo "tampered" >/etc/netns/shop-web/hosts
repair "hosts file edited"

ip link set br-front mtu 1400
repair "bridge mtu changed"

ip link set "$(ip -o link | grep -o 've-[0-9a-f]*' | head -1)" nomaster
repair "veth detached from its bridge"

ip netns exec shop-api ip link set eth0 down
repair "sandbox interface down"
: "$web_front"
echo "PASS"
