# Existing namespaces (`netns:`): a path, pid:N, and docker:/podman:
# containers through stand-in CLIs on PATH. cnm adds its interfaces there,
# never writes files for them, never deletes them, removes only what it
# added; a container started again with a new namespace is attached again.
source "$(dirname "$0")/lib.sh"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
command -v dig >/dev/null || fail "dig (bind9-dnsutils) is required"

# A "container": a process in a network namespace of its own, loopback
# down as `unshare --net` leaves it.
# Sets PID (no command substitution: it would wait for the process).
start() { unshare --net sleep 1000 >/dev/null 2>&1 & PID=$!; PIDS+=("$PID")
  for _ in $(seq 50); do [ "$(readlink /proc/$PID/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break; sleep 0.02; done; }
in_pid() { local pid=$1; shift; nsenter -t "$pid" -n "$@"; }
# Three tries, as lib.sh's reach(): a first neighbour resolution under load.
ping_in() { for _ in 1 2 3; do in_pid "$1" ping -c1 -W1 -q "$2" >/dev/null 2>&1 && return 0; done; return 1; }

start; C1=$PID
# Someone else's interface in it: cnm must leave it alone.
ip link add fx0 type veth peer name fx1
ip link set fx1 netns "$C1"
ip link del fx0 2>/dev/null || true
ip link add fy0 type veth peer name fy1
ip link set fy1 netns "$C1"
ip netns add ext
start; WEB=$PID
start; DB=$PID
start; P1=$PID
mkdir -p "$WORK/bin" "$WORK/state"
echo "$WEB" >"$WORK/state/web"
echo "$DB" >"$WORK/state/db"
# Stand-ins: docker answers `inspect --format {{.State.Pid}} NAME` with the
# pid; podman prints inspect's JSON.
cat >"$WORK/bin/docker" <<SH
#!/bin/bash
[ "\$1" = inspect ] || exit 2
name="\${@: -1}"
[ -f "$WORK/state/\$name" ] || { echo "Error: No such object: \$name" >&2; exit 1; }
cat "$WORK/state/\$name"
SH
cat >"$WORK/bin/podman" <<SH
#!/bin/bash
[ "\$1" = inspect ] || exit 2
name="\${@: -1}"
[ -f "$WORK/state/\$name" ] || { echo "Error: no such container \$name" >&2; exit 125; }
echo "[{\"Name\": \"\$name\", \"State\": {\"Running\": true, \"Pid\": \$(cat "$WORK/state/\$name")}}]"
SH
chmod 755 "$WORK/bin/docker" "$WORK/bin/podman"
export PATH="$WORK/bin:$PATH"

T="$WORK/borrow.yaml"
cat >"$T" <<YAML
version: 1
name: bn
networks:
  lan: { subnet: 10.78.0.0/24 }
sandboxes:
  c1: { netns: "pid:$C1" }
  c2: { netns: /run/netns/ext }
  web: { netns: "docker:web" }
  db: { netns: "podman:db" }
  p1: { netns: /proc/$P1/ns/net }
  own: {}
endpoints:
  c1-lan: { network: lan, sandbox: c1, address: 10.78.0.11, aliases: [one] }
  c2-lan: { network: lan, sandbox: c2, address: 10.78.0.12 }
  web-lan: { network: lan, sandbox: web, address: 10.78.0.13 }
  db-lan: { network: lan, sandbox: db, address: 10.78.0.14 }
  p1-lan: { network: lan, sandbox: p1, address: 10.78.0.15 }
  own-lan: { network: lan, sandbox: own, address: 10.78.0.10 }
YAML

step "plan names each borrowed namespace; apply wires them"
expect_rc 2 cnm plan --detailed-exitcode "$T"
grep -q "borrowed from pid:$C1" "$WORK/out" || { cat "$WORK/out"; fail "plan does not say c1 is borrowed"; }
grep -q "borrowed from docker:web" "$WORK/out" || fail "plan does not say web is borrowed"
grep -q "/etc/netns/bn-c1" "$WORK/out" && fail "plan writes files for a borrowed namespace"
cnm apply "$T" >/dev/null
converged "$T"
in_pid "$C1" ip -o addr show eth0 | grep >/dev/null '10.78.0.11/24' || fail "c1 has no eth0 with its address"
ip netns exec ext ip -o addr show eth0 | grep >/dev/null '10.78.0.12/24' || fail "ext has no eth0"
in_pid "$WEB" ip -o addr show eth0 | grep >/dev/null '10.78.0.13/24' || fail "docker:web has no eth0"
in_pid "$DB" ip -o addr show eth0 | grep >/dev/null '10.78.0.14/24' || fail "podman:db has no eth0"
in_pid "$P1" ip -o addr show eth0 | grep >/dev/null '10.78.0.15/24' || fail "/proc/P1/ns/net has no eth0"
in_pid "$C1" ip -o link show fy1 >/dev/null || fail "c1's own interface fy1 is gone"
in_pid "$C1" ip route show default | grep >/dev/null 'via 10.78.0.1' || fail "c1 has no default route"

step "traffic both ways, and names from the embedded resolver"
reach own 10.78.0.11
reach own c1
reach own one
ping_in "$C1" 10.78.0.10 || fail "c1 cannot reach own"
ping_in "$WEB" 10.78.0.14 || fail "web cannot reach db"
got=$(in_pid "$C1" dig +short +time=2 +tries=2 @127.0.0.11 own)
[ "$got" = 10.78.0.10 ] || fail "c1 does not resolve own through 127.0.0.11: '$got'"
got=$(in_pid "$WEB" dig +short +time=2 +tries=2 @127.0.0.11 db)
[ "$got" = 10.78.0.14 ] || fail "web does not resolve db: '$got'"

step "no hosts or resolv.conf for borrowed namespaces"
for s in c1 c2 web db; do [ -e "/etc/netns/bn-$s" ] && fail "/etc/netns/bn-$s was written"; done
[ -f /etc/netns/bn-own/hosts ] || fail "own has no hosts file"

step "a container started again (new namespace) is drift, attached again"
kill "$WEB"; wait "$WEB" 2>/dev/null || true
start; WEB2=$PID
echo "$WEB2" >"$WORK/state/web"
expect_rc 2 cnm plan --detailed-exitcode "$T"
grep -q "attach again" "$WORK/out" || { cat "$WORK/out"; fail "plan does not say web is attached again"; }
cnm apply "$T" >/dev/null
converged "$T"
in_pid "$WEB2" ip -o addr show eth0 | grep >/dev/null '10.78.0.13/24' || fail "the new web namespace has no eth0"
ping_in "$WEB2" 10.78.0.10 || fail "new web cannot reach own"
got=$(in_pid "$WEB2" dig +short +time=2 +tries=2 @127.0.0.11 own)
[ "$got" = 10.78.0.10 ] || fail "new web does not resolve own: '$got'"

step "cnm watch attaches a container started again within seconds (no resync)"
"$CNM" watch "$T" --resync 1h >"$WORK/watch.log" 2>&1 & W=$!; PIDS+=("$W")
started() { "$CNM" status --topology bn 2>/dev/null | grep >/dev/null 'last apply'; }
for _ in $(seq 100); do started && break; sleep 0.1; done
started || { cat "$WORK/watch.log"; "$CNM" status --topology bn; fail "watch did not start"; }
# Let the echoes of the last apply (IPv6 link-local addresses appearing)
# pass, so the change below is what the watcher reacts to.
sleep 3
kill "$DB"; wait "$DB" 2>/dev/null || true
start; DB=$PID
echo "$DB" >"$WORK/state/db"
ok=
for _ in $(seq 100); do
  if in_pid "$DB" ip -o addr show eth0 2>/dev/null | grep >/dev/null '10.78.0.14/24'; then ok=1; break; fi
  sleep 0.1
done
[ -n "$ok" ] || { cat "$WORK/watch.log"; fail "watch did not attach the new podman:db namespace within 10 s"; }
ping_in "$DB" 10.78.0.10 || fail "the new db cannot reach own"
# The line comes when the apply ends (after its verify): wait for it.
said() { grep -q 'reason="the namespace sandbox db borrows is another one"' "$WORK/watch.log"; }
for _ in $(seq 50); do said && break; sleep 0.1; done
said || { cat "$WORK/watch.log"; fail "watch did not say why it attached db again"; }
kill "$W"; wait "$W" 2>/dev/null || true
converged "$T"

step "an interface removed by hand in a borrowed namespace is drift"
in_pid "$C1" ip link del eth0
expect_rc 2 cnm plan --detailed-exitcode "$T"
cnm apply "$T" >/dev/null
converged "$T"
reach own c1

step "a sandbox switched between a borrowed namespace and one of its own, and back"
sed 's|  c2: { netns: /run/netns/ext }|  c2: {}|' "$T" >"$WORK/own.yaml"
expect_rc 2 cnm plan --detailed-exitcode "$WORK/own.yaml"
grep -q 'instead of a borrowed one' "$WORK/out" || { cat "$WORK/out"; fail "plan does not say c2 gets its own namespace"; }
cnm apply "$WORK/own.yaml" >/dev/null
converged "$WORK/own.yaml"
ip netns exec ext ip link show eth0 >/dev/null 2>&1 && fail "eth0 is left in ext after c2 got its own namespace"
[ -f /etc/netns/bn-c2/hosts ] || fail "c2's own namespace has no hosts file"
reach own 10.78.0.12
cnm apply "$T" >/dev/null
converged "$T"
[ -e /etc/netns/bn-c2 ] && fail "c2's files are left after it borrows again"
ip netns exec ext ip -o addr show eth0 | grep >/dev/null '10.78.0.12/24' || fail "ext has no eth0 again"
reach own 10.78.0.12

step "destroy removes only what cnm added; the namespaces live on"
cnm destroy "$T" >/dev/null
for p in "$C1" "$WEB2" "$DB" "$P1"; do
  [ -e "/proc/$p/ns/net" ] || fail "process $p is gone"
  in_pid "$p" ip link show eth0 >/dev/null 2>&1 && fail "eth0 is left in the namespace of $p"
done
in_pid "$C1" ip -o link show fy1 >/dev/null || fail "destroy removed c1's own interface fy1"
[ -e /run/netns/ext ] || fail "destroy deleted /run/netns/ext"
ip netns exec ext true || fail "/run/netns/ext is no longer a namespace"
ip netns exec ext ip link show eth0 >/dev/null 2>&1 && fail "eth0 is left in ext"
ip -o link | grep >/dev/null ' ve-' && fail "host ends of veths are left"
ls /run/netns | grep >/dev/null '^bn-' && fail "names under /run/netns are left: $(ls /run/netns)"

step "SIGKILL during apply and destroy: the next one converges, nothing leaks"
for i in $(seq 1 12); do
  killed_midway "$CNM" apply "$T"
  expect_rc 0 cnm apply "$T"
  converged "$T"
  killed_midway "$CNM" destroy "$T"
  expect_rc 0 cnm destroy "$T"
done
for p in "$C1" "$WEB2" "$DB" "$P1"; do
  in_pid "$p" ip link show eth0 >/dev/null 2>&1 && fail "eth0 is left in the namespace of $p after killed runs"
done
in_pid "$C1" ip -o link show fy1 >/dev/null || fail "killed runs removed c1's own interface fy1"
ip netns exec ext true || fail "/run/netns/ext is gone after killed runs"
ip -o link | grep >/dev/null ' ve-' && fail "host ends of veths are left after killed runs"
ls /run/netns | grep >/dev/null '^bn-' && fail "names under /run/netns are left after killed runs: $(ls /run/netns)"

step "bad netns: errors before any change"
before=$(snapshot)
printf 'not a namespace\n' >"$WORK/plain"
for bad in "$WORK/plain" "docker:nosuch" "podman:nosuch" "pid:999999" /proc/self/ns/net "/proc/$C1/ns/mnt"; do
  sed "s|netns: \"pid:$C1\"|netns: \"$bad\"|" "$T" >"$WORK/bad.yaml"
  expect_rc 1 cnm apply "$WORK/bad.yaml"
  grep -q "sandbox c1: netns" "$WORK/err" || { cat "$WORK/err"; fail "no clear error for netns $bad"; }
done
grep -q "not a network namespace" "$WORK/err" || { cat "$WORK/err"; fail "a mount namespace is not refused as such"; }
[ "$(snapshot)" = "$before" ] || fail "a refused netns changed the kernel"

step "a container's own eth0: cnm's endpoint takes the lowest free name, eth1, and keeps it"
start; C3=$PID
ip link add fz0 type veth peer name eth0
ip link set eth0 netns "$C3"
printf 'version: 1\nname: b3\nnetworks:\n  n: { subnet: 10.79.0.0/24 }\nsandboxes:\n  c3: { netns: "pid:%s" }\n  p: {}\nendpoints:\n  c3-n: { network: n, sandbox: c3 }\n  p-n: { network: n, sandbox: p }\n' "$C3" >"$WORK/b3.yaml"
expect_rc 0 cnm apply "$WORK/b3.yaml"
grep >/dev/null "endpoint c3-n (c3 eth1" "$WORK/out" || fail "not eth1: $(cat "$WORK/out")"
in_pid "$C3" ip -o link show eth0 >/dev/null || fail "the container's eth0 is gone"
ping_in "$C3" 10.79.0.3 || fail "c3 cannot reach p over eth1"
# Its own interface goes away (with its host end): cnm's keeps its name.
ip link del fz0
converged "$WORK/b3.yaml"
expect_rc 0 cnm destroy "$WORK/b3.yaml"
echo PASS
