#!/usr/bin/env bash
# Plugins that restart or go away, against the example plugin: a destroy
# during a 1.5 s restart waits for it and gives everything back; with the
# plugin gone for good, destroy removes the kernel objects, keeps the
# records of what the plugin may hold, names them and exits 1, and a later
# destroy releases them once the plugin is back (or --forget-unreachable
# forgets them); a pool or subnet that overlaps another topology never
# reaches NetworkDriver.CreateNetwork.
source "$(dirname "$0")/lib.sh"
T="$EXAMPLES/remote.yaml"
PLUGIN="${CNM_PLUGIN:-$(dirname "$CNM")/examples/cnm-plugin}"
[ -x "$PLUGIN" ] || fail "the example plugin is not built at $PLUGIN (cargo build --example cnm-plugin)"
ST=/run/docker/cnmp-state
PID=
trap 'if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT

start_plugin() {
  "$PLUGIN" --listen unix:/run/docker/plugins/cnmp.sock --state "$ST" >/dev/null 2>>"$WORK/plugin.err" &
  PID=$!
  for _ in $(seq 100); do
    printf 'GET / HTTP/1.0\r\n\r\n' | socat -t1 - UNIX-CONNECT:/run/docker/plugins/cnmp.sock >/dev/null 2>&1 && return
    sleep 0.05
  done
  fail "the plugin did not start: $(cat "$WORK/plugin.err")"
}
# SIGKILL: its socket file stays behind, refusing connections (a crash,
# or a restart under way).
crash_plugin() {
  kill -9 "$PID"; wait "$PID" 2>/dev/null || true; PID=
  [ -S /run/docker/plugins/cnmp.sock ] || fail "the socket file did not stay"
}
holds_nothing() {
  for k in networks endpoints pools addresses; do
    grep -q "\"$k\": {}" "$ST/state.json" || { cat "$ST/state.json"; fail "the plugin still holds $k ($1)"; }
  done
}
before=$(snapshot)

step "destroy during a 1.5 s plugin restart waits for it and gives everything back"
start_plugin
expect_rc 0 cnm apply "$T"
crash_plugin
# (The subshell waits on the plugin it started: it is not waited for.)
(sleep 1.5; start_plugin; wait) &
expect_rc 0 cnm destroy "$T"
grep >/dev/null "plugin cnmp does not answer (restarting?); waiting up to 30 s" "$WORK/err" || fail "destroy did not say it waits: $(cat "$WORK/err")"
PID=$(pgrep -f 'cnm-plugin --listen unix:/run/docker/plugins/cnmp.sock' | head -1)
holds_nothing "after a destroy across a restart"
[ "$before" = "$(snapshot)" ] || { diff <(echo "$before") <(snapshot) || true; fail "destroy left objects"; }
expect_rc 1 cnm show --topology plug

step "the plugin gone for good: destroy removes the kernel objects, keeps what the plugin holds, exits 1"
expect_rc 0 cnm apply "$T"
crash_plugin
CNM_PLUGIN_WAIT=2 expect_rc 1 cnm destroy "$T"
for what in "the pool of network back" "network back" "endpoint web-front"; do
  grep -F >/dev/null "$what" "$WORK/err" || fail "destroy does not name $what: $(cat "$WORK/err")"
done
grep >/dev/null "cnm destroy --topology plug" "$WORK/err" || fail "no hint to destroy again: $(cat "$WORK/err")"
# Kernel objects gone (the plugin's own bridges aside: they are its).
[ -z "$(ip netns list)" ] || fail "namespaces left: $(ip netns list)"
ip -o link show | grep >/dev/null ' ve-' && fail "veths of cnm's left"
# Still down: the same again.
CNM_PLUGIN_WAIT=1 expect_rc 1 cnm destroy --topology plug
start_plugin
expect_rc 0 cnm destroy --topology plug
holds_nothing "after the second destroy"
expect_rc 1 cnm show --topology plug
expect_rc 1 cnm destroy --topology plug

step "--forget-unreachable forgets what the plugin may hold, with a warning"
expect_rc 0 cnm apply "$T"
crash_plugin
CNM_PLUGIN_WAIT=1 expect_rc 0 cnm destroy "$T" --forget-unreachable
grep >/dev/null "forgets .* as asked" "$WORK/err" || fail "no warning: $(cat "$WORK/err")"
expect_rc 1 cnm show --topology plug
start_plugin
# The plugin still holds what cnm forgot: it is its to clean.
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
rm -rf "$ST"
for l in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^p[bcv]' || true); do ip link del "$l" 2>/dev/null || true; done

step "a subnet another topology holds: refused before any plugin call"
start_plugin
printf 'version: 1\nname: other\nnetworks:\n  n: { subnet: 10.199.0.0/24 }\nsandboxes: { s: {} }\nendpoints:\n  e: { network: n, sandbox: s }\n' >"$WORK/other.yaml"
expect_rc 0 cnm apply "$WORK/other.yaml"
calls_before=$(wc -l <"$ST/calls.log" 2>/dev/null || echo 0)
printf 'version: 1\nname: clash\nnetworks:\n  f: { driver: cnmp, subnet: 10.199.0.0/25 }\nsandboxes: { s: {} }\nendpoints:\n  e: { network: f, sandbox: s }\n' >"$WORK/clash.yaml"
expect_rc 1 cnm apply "$WORK/clash.yaml"
grep >/dev/null "subnet 10.199.0.0/25 overlaps subnet 10.199.0.0/24 of topology other" "$WORK/err" || fail "file subnet: $(cat "$WORK/err")"
[ "$(wc -l <"$ST/calls.log" 2>/dev/null || echo 0)" = "$calls_before" ] || fail "the plugin was called: $(tail -3 "$ST/calls.log")"

step "an overlapping pool the IPAM plugin returns is given back and refused before CreateNetwork"
printf 'version: 1\nname: clash\nnetworks:\n  b: { driver: cnmp, ipam: { driver: cnmp } }\nsandboxes: { s: {} }\nendpoints:\n  e: { network: b, sandbox: s }\n' >"$WORK/clash.yaml"
expect_rc 1 cnm apply "$WORK/clash.yaml"
grep >/dev/null "network b: the pool 10.199.0.0/24 that IPAM plugin cnmp returned overlaps subnet 10.199.0.0/24 of topology other" "$WORK/err" || fail "pool: $(cat "$WORK/err")"
grep >/dev/null "IpamDriver.ReleasePool" "$ST/calls.log" || fail "the pool was not given back: $(cat "$ST/calls.log")"
grep >/dev/null "NetworkDriver.CreateNetwork" "$ST/calls.log" && fail "CreateNetwork was sent: $(cat "$ST/calls.log")"
grep -q '"pools": {}' "$ST/state.json" || { cat "$ST/state.json"; fail "the plugin still holds the pool"; }
expect_rc 0 cnm destroy --topology clash
expect_rc 0 cnm destroy "$WORK/other.yaml"
echo PASS
