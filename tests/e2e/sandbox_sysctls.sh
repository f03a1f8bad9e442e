# A sandbox's sysctls (Docker's --sysctl): set inside its own namespace
# only, read back by plan (drift), edited in place; non-net and interface
# keys refused before any change.
source "$(dirname "$0")/lib.sh"

T="$WORK/sysctl.yaml"
cat >"$T" <<'YAML'
version: 1
name: sc
networks:
  lan: { subnet: 10.79.0.0/24 }
sandboxes:
  a:
    sysctls:
      net.ipv4.ip_unprivileged_port_start: 80
      net.ipv4.conf.default.rp_filter: "2"
      net.ipv4.tcp_keepalive_time: "600"
  b: {}
endpoints:
  a-lan: { network: lan, sandbox: a }
  b-lan: { network: lan, sandbox: b }
YAML
host_before=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/net/ipv4/tcp_keepalive_time)
in_sc() { ip netns exec "sc-$1" cat "/proc/sys/$2"; }

step "plan shows them; apply sets them inside the sandbox only"
expect_rc 2 cnm plan --detailed-exitcode "$T"
cnm apply "$T" >/dev/null
converged "$T"
[ "$(in_sc a net/ipv4/ip_unprivileged_port_start)" = 80 ] || fail "ip_unprivileged_port_start not set in a"
[ "$(in_sc a net/ipv4/tcp_keepalive_time)" = 600 ] || fail "tcp_keepalive_time not set in a"
[ "$(in_sc a net/ipv4/conf/default/rp_filter)" = 2 ] || fail "conf.default.rp_filter not set in a"
[ "$(in_sc b net/ipv4/tcp_keepalive_time)" = 7200 ] || fail "b got a's sysctl"
[ "$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/net/ipv4/tcp_keepalive_time)" = "$host_before" ] \
  || fail "the host's sysctls changed"
reach a b

step "changed by hand: drift, set again"
ip netns exec sc-a sh -c 'echo 300 >/proc/sys/net/ipv4/tcp_keepalive_time'
expect_rc 2 cnm plan --detailed-exitcode "$T"
grep -q 'sysctl net.ipv4.tcp_keepalive_time' "$WORK/out" || { cat "$WORK/out"; fail "plan does not name the sysctl"; }
cnm apply "$T" >/dev/null
[ "$(in_sc a net/ipv4/tcp_keepalive_time)" = 600 ] || fail "drift not repaired"
converged "$T"

step "edited in the file: updated in place (the namespace stays)"
ino=$(stat -L -c %i /run/netns/sc-a)
sed -i 's/tcp_keepalive_time: "600"/tcp_keepalive_time: "900"/' "$T"
expect_rc 2 cnm plan --detailed-exitcode "$T"
grep -q '600 → 900' "$WORK/out" || { cat "$WORK/out"; fail "plan does not show 600 → 900"; }
cnm apply "$T" >/dev/null
[ "$(in_sc a net/ipv4/tcp_keepalive_time)" = 900 ] || fail "edit not applied"
[ "$(stat -L -c %i /run/netns/sc-a)" = "$ino" ] || fail "the namespace was made again for a sysctl"
converged "$T"

step "refused keys: file:line:col, nothing changed"
before=$(snapshot)
for bad in "kernel.shmmax: 1" "net.ipv4.conf.eth0.rp_filter: 1" "net..x: 1" "net.ipv4.ip_forward: [1]"; do
  sed "s|net.ipv4.ip_unprivileged_port_start: 80|$bad|" "$T" >"$WORK/bad.yaml"
  expect_rc 1 cnm apply "$WORK/bad.yaml"
  grep -qE 'bad.yaml:[0-9]+:[0-9]+: sandbox a: sysctl' "$WORK/err" || { cat "$WORK/err"; fail "no located error for $bad"; }
done
# A key the kernel does not have: a plan error, before any change.
sed "s|net.ipv4.ip_unprivileged_port_start: 80|net.ipv4.no_such_knob: 1|" "$T" >"$WORK/bad.yaml"
expect_rc 1 cnm apply "$WORK/bad.yaml"
grep -q 'sysctl net.ipv4.no_such_knob does not exist' "$WORK/err" || { cat "$WORK/err"; fail "an unknown key is not refused"; }
[ "$(snapshot)" = "$before" ] || fail "a refused file changed the kernel"
cnm destroy "$T" >/dev/null
echo PASS
