# Objects cnm does not own survive apply, drift repair and destroy; a name
# clash with one is a plan error that changes nothing.
source "$(dirname "$0")/lib.sh"
T="$EXAMPLES/two-tier.yaml"
ip link add br-foreign type bridge
ip link add vf0 type veth peer name vf1
ip netns add foreign
nft add table inet foreign
nft add chain inet foreign c
ip link set vf1 master br-foreign
snapshot >"$WORK/foreign-before"
expect_rc 0 cnm apply "$T"
expect_rc 0 cnm apply "$EXAMPLES/quickstart.yaml"
expect_rc 0 cnm destroy "$T"
expect_rc 0 cnm destroy "$EXAMPLES/quickstart.yaml"
sleep 0.2
snapshot >"$WORK/foreign-after"
diff -u "$WORK/foreign-before" "$WORK/foreign-after" || fail "foreign objects changed"

step "name clash with a foreign bridge"
ip link add br-front type bridge
snapshot >"$WORK/before"
expect_rc 1 cnm plan "$T"
grep -q "br-front already exists and cnm does not own it" "$WORK/err" || fail "clash message: $(cat "$WORK/err")"
expect_rc 1 cnm apply "$T"
snapshot >"$WORK/after"
diff -u "$WORK/before" "$WORK/after" || fail "a refused apply changed the kernel"
ip link del br-front

step "name clash with a foreign namespace"
ip netns add shop-db
expect_rc 1 cnm apply "$T"
grep -q "shop-db already exists and cnm does not own it" "$WORK/err" || fail "netns clash message: $(cat "$WORK/err")"
echo "PASS"
