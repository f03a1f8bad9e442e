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

# The same inode and size, the mtime set back: only the ctime tells.
f=/etc/netns/shop-web/hosts
was=$(stat -c %y "$f")
ino=$(stat -c %i "$f")
printf 'X' | dd of="$f" bs=1 seek=0 conv=notrunc status=none
touch -d "$was" "$f"
[ "$(stat -c %i "$f")" = "$ino" ] && [ "$(stat -c %y "$f")" = "$was" ] || fail "the in-place edit changed the inode or the mtime"
repair "hosts file edited in place, same size, mtime set back"

ip link set br-front mtu 1400
repair "bridge mtu changed"

ip link set "$(ip -o link | grep -o 've-[0-9a-f]*' | head -1)" nomaster
repair "veth detached from its bridge"

ip netns exec shop-api ip link set eth0 down
repair "sandbox interface down"
ip netns exec shop-web ip link set eth1 address 02:00:00:00:00:99
repair "sandbox interface MAC changed"

ip netns exec shop-api ip link set eth1 mtu 1300
repair "sandbox interface MTU changed"

ip link set br-front down
repair "bridge down"

ip addr flush dev br-shop-back
repair "bridge gateway address flushed"

rm /etc/netns/shop-db/hosts
repair "hosts file deleted"

echo "nameserver 6.6.6.6" >/etc/netns/shop-web/resolv.conf
repair "resolv.conf edited"

ip netns exec shop-db ip link set lo down
repair "sandbox loopback down"

ip netns exec shop-web ip route replace default via 10.20.0.1 dev eth0
repair "default route pointed elsewhere"

nft flush table inet cnm-shop
repair "firewall table flushed"

nft delete table inet cnm-shop
repair "firewall table deleted"

nft -a list chain inet cnm-shop postrouting | awk '/handle/ && /masquerade/ {print $NF; exit}' | xargs -r -I{} nft delete rule inet cnm-shop postrouting handle {}
repair "one firewall rule deleted"

echo 0 >/proc/sys/net/ipv4/ip_forward
repair "IPv4 forwarding turned off"

step "a foreign link renamed to an owned name is refused, then repaired once gone"
ip link del br-front
ip link add tmp0 type bridge
ip link set tmp0 name br-front
expect_rc 1 cnm plan "$T"
grep >/dev/null "br-front already exists and cnm does not own it" "$WORK/err" || fail "clash not reported: $(cat "$WORK/err")"
expect_rc 1 cnm apply "$T"
ip link del br-front
repair "bridge recreated after the foreign one left"
: "$web_front"
echo "PASS"
