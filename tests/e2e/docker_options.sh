# Docker's option names and the Docker parity options, with real traffic:
# com.docker.network.* long names (string values as `docker network create
# -o` gives them), masquerade: false (outbound traffic keeps the sandbox's
# address), host_binding_ipv4 (ports without a host IP bind there only),
# com.docker.network.driver.mtu.
source "$(dirname "$0")/lib.sh"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

# The outside world: a namespace routed to this host; the host has two
# addresses on that link.
ip netns add outside
ip link add ext0 type veth peer name ext1 netns outside
ip addr add 192.0.2.1/24 dev ext0
ip addr add 192.0.2.9/24 dev ext0
ip link set ext0 up
ip netns exec outside ip addr add 192.0.2.2/24 dev ext1
ip netns exec outside ip link set ext1 up
ip netns exec outside ip link set lo up
ip netns exec outside ip route add default via 192.0.2.1
# Routed setups: the outside knows the way back to the sandboxes.
ip netns exec outside ip route add 10.66.0.0/24 via 192.0.2.1

T="$WORK/docker.yaml"
cat >"$T" <<'YAML'
version: 1
name: dk
networks:
  routed:
    subnet: 10.66.0.0/24
    options:
      com.docker.network.bridge.name: br-routed
      com.docker.network.bridge.enable_ip_masquerade: "false"
      com.docker.network.bridge.host_binding_ipv4: "192.0.2.9"
      com.docker.network.driver.mtu: "1400"
  nat:
    subnet: 10.67.0.0/24
    options: { com.docker.network.bridge.enable_icc: "true" }
sandboxes: { r: {}, n: {} }
endpoints:
  r-routed: { network: routed, sandbox: r, ports: ["8080:80"] }
  n-nat: { network: nat, sandbox: n }
YAML

step "Docker's long option names are accepted, and plan shows what they set"
expect_rc 0 cnm validate "$T"
expect_rc 0 cnm apply "$T"
ip link show br-routed | grep >/dev/null "mtu 1400" || fail "com.docker.network.driver.mtu did not set the bridge's MTU: $(ip link show br-routed)"
ip netns exec dk-r ip link show eth0 | grep >/dev/null "mtu 1400" || fail "the endpoint's MTU is not 1400"
converged "$T"

bg() { "$@" >/dev/null 2>&1 & PIDS+=($!); }
bg ip netns exec outside socat TCP-LISTEN:9000,fork,reuseaddr SYSTEM:'echo peer=$SOCAT_PEERADDR'
bg "$CNM" exec r -- socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:'echo r-tcp'
sleep 0.5
ask() { "$@" 2>/dev/null </dev/null || true; }

step "masquerade: false: outbound traffic keeps the sandbox's address"
got=$(ask "$CNM" exec r -- socat -T2 - TCP:192.0.2.2:9000,connect-timeout=2)
[ "$got" = "peer=10.66.0.2" ] || fail "routed network: wanted peer=10.66.0.2, got '$got'"
got=$(ask "$CNM" exec n -- socat -T2 - TCP:192.0.2.2:9000,connect-timeout=2)
[ "$got" = "peer=192.0.2.1" ] || fail "masqueraded network: wanted peer=192.0.2.1, got '$got'"

step "host_binding_ipv4: a port without a host IP answers on that address only"
got=$(ask ip netns exec outside socat -T2 - TCP:192.0.2.9:8080,connect-timeout=1)
[ "$got" = "r-tcp" ] || fail "192.0.2.9:8080: wanted r-tcp, got '$got'"
got=$(ask ip netns exec outside socat -T1 - TCP:192.0.2.1:8080,connect-timeout=1)
[ -z "$got" ] || fail "192.0.2.1:8080 answered '$got' though the network binds ports to 192.0.2.9"

step "show writes cnm's short names; plan of that is empty"
expect_rc 0 cnm show --topology dk
grep >/dev/null "masquerade: false" "$WORK/out" || fail "show: $(cat "$WORK/out")"
cp "$WORK/out" "$WORK/shown.yaml"
converged "$WORK/shown.yaml"

step "a long and a short name for one option, and bad values, are located errors"
B="$WORK/bad.yaml"
printf 'version: 1\nname: b\nnetworks:\n  x:\n    options:\n      icc: true\n      com.docker.network.bridge.enable_icc: "false"\n' >"$B"
expect_rc 1 cnm validate "$B"
grep >/dev/null "bad.yaml:[67]:[0-9]*: network x: options.* set the same option" "$WORK/err" || fail "$(cat "$WORK/err")"
printf 'version: 1\nname: b\nnetworks:\n  x:\n    mtu: 1500\n    options: { com.docker.network.driver.mtu: "1400" }\n' >"$B"
expect_rc 1 cnm validate "$B"
grep >/dev/null "contradicts mtu 1500" "$WORK/err" || fail "$(cat "$WORK/err")"
printf 'version: 1\nname: b\nnetworks:\n  x:\n    options: { com.docker.network.bridge.host_binding_ipv4: "::1" }\n' >"$B"
expect_rc 1 cnm validate "$B"
grep >/dev/null "must be an IPv4 address" "$WORK/err" || fail "$(cat "$WORK/err")"

expect_rc 0 cnm destroy "$T"

step "aux_addresses: reserved for something else on the network, never given to an endpoint"
A="$WORK/aux.yaml"
cat >"$A" <<'YAML'
version: 1
name: ax
networks:
  lan:
    subnet: 10.68.0.0/24
    aux_addresses: { appliance: 10.68.0.2 }
    options: { bridge_name: br-aux }
sandboxes: { s: {} }
endpoints:
  s-lan: { network: lan, sandbox: s }
YAML
expect_rc 0 cnm apply "$A"
ip netns exec ax-s ip -o addr show eth0 | grep >/dev/null "10.68.0.3/24" || fail "s-lan did not skip the aux address: $(ip netns exec ax-s ip -o addr show eth0)"
# The appliance: a namespace on the same bridge holding the reserved address.
ip netns add appliance
ip link add app0 type veth peer name app1 netns appliance
ip link set app0 master br-aux up
ip netns exec appliance ip addr add 10.68.0.2/24 dev app1
ip netns exec appliance ip link set app1 up
"$CNM" exec s -- ping -c1 -W2 -q 10.68.0.2 >/dev/null || fail "s cannot reach the appliance at its reserved address"
ip link del app0
ip netns del appliance
expect_rc 0 cnm destroy "$A"

step "extra_hosts: lines in the sandbox's hosts file; host-gateway is its gateway"
X="$WORK/extra.yaml"
cat >"$X" <<'YAML'
version: 1
name: xh
networks:
  lan: { subnet: 10.69.0.0/24 }
sandboxes:
  s: { extra_hosts: ["db.example:192.0.2.77", "host.docker.internal:host-gateway", "six:fd00::77"] }
endpoints:
  s-lan: { network: lan, sandbox: s }
YAML
expect_rc 0 cnm apply "$X"
[ "$("$CNM" exec s -- getent hosts db.example | awk '{print $1}')" = 192.0.2.77 ] || fail "db.example: $("$CNM" exec s -- cat /etc/hosts)"
[ "$("$CNM" exec s -- getent ahostsv4 host.docker.internal | awk 'NR==1 {print $1}')" = 10.69.0.1 ] || fail "host-gateway: $("$CNM" exec s -- cat /etc/hosts)"
"$CNM" exec s -- ping -c1 -W2 -q host.docker.internal >/dev/null || fail "s cannot reach host.docker.internal"
[ "$("$CNM" exec s -- getent hosts six | awk '{print $1}')" = fd00::77 ] || fail "six: $("$CNM" exec s -- cat /etc/hosts)"
sed -i 's/192.0.2.77/192.0.2.78/' "$X"
expect_rc 2 cnm plan --detailed-exitcode "$X"
grep >/dev/null -- "+ 192.0.2.78	db.example" "$WORK/out" || fail "plan does not show the new line: $(cat "$WORK/out")"
expect_rc 0 cnm apply "$X"
[ "$("$CNM" exec s -- getent hosts db.example | awk '{print $1}')" = 192.0.2.78 ] || fail "db.example after the edit"
expect_rc 0 cnm show --topology xh
grep >/dev/null "host.docker.internal:host-gateway" "$WORK/out" || fail "show lost extra_hosts: $(cat "$WORK/out")"
expect_rc 0 cnm destroy "$X"
printf 'version: 1\nname: b\nnetworks:\n  n: { subnet: 10.70.0.0/24, internal: true }\nsandboxes:\n  s: { extra_hosts: ["h:host-gateway", "bad name:1.2.3.4", "x:nope"] }\nendpoints:\n  e: { network: n, sandbox: s }\n' >"$B"
expect_rc 1 cnm validate "$B"
grep >/dev/null "bad.yaml:6:.*host-gateway is the gateway of the sandbox's default route, and it has none" "$WORK/err" || fail "$(cat "$WORK/err")"
grep >/dev/null "bad.yaml:6:.*extra_hosts 'x:nope': 'nope' is neither an IP address nor host-gateway" "$WORK/err" || fail "$(cat "$WORK/err")"
grep >/dev/null "bad.yaml:6:.*extra_hosts 'bad name:1.2.3.4': name" "$WORK/err" || fail "$(cat "$WORK/err")"
echo "PASS"
