#!/usr/bin/env bash
# cnm as Docker's network driver under a real dockerd in this private host
# (never the machine's): `docker network create -d cnm`; containers get
# Docker's addresses, reach each other by name (Docker's DNS) and an
# outside namespace (through Docker's FORWARD policy DROP), publish a port
# reached from outside; `cnm show --topology docker` lists them; a flushed
# address is drift that plan finds and apply repairs; the plugin killed and
# restarted, a new container reaches the old ones; enable_icc=false
# isolates; an overlapping pool is refused with cnm's reason; docker rm and
# docker network rm leave nothing of cnm's.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../support/docker.sh"
export PATH="/usr/bin:$PATH"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; docker_down; rm -rf "$WORK"' EXIT
plugin() {
  "$CNM" docker-plugin -v >>"$WORK/plugin.log" 2>&1 &
  PLUGIN=$!; PIDS+=("$PLUGIN")
  for _ in $(seq 50); do [ -S /run/docker/plugins/cnm.sock ] && return 0; sleep 0.1; done
  cat "$WORK/plugin.log"; fail "no socket"
}
RUN=(run -d --cap-add NET_RAW)
# Until cnm has adopted a container's interface (right after it starts).
adopted() { for _ in $(seq 50); do "$CNM" show --topology docker 2>/dev/null | grep -q "address: \"$1\"" && return 0; sleep 0.1; done; fail "$1 not adopted"; }
ip_of() { docker inspect -f "{{(index .NetworkSettings.Networks \"$2\").IPAddress}}" "$1"; }

step "the plugin, then dockerd; an outside namespace routed to this host"
plugin
docker_up || fail "dockerd did not start"
ip netns add outside
ip link add ext0 type veth peer name ext1 netns outside
ip addr add 192.0.2.1/24 dev ext0; ip link set ext0 up
ip -n outside addr add 192.0.2.2/24 dev ext1; ip -n outside link set ext1 up
ip -n outside route add default via 192.0.2.1

step "docker network create -d cnm: Docker's pool and gateway, in the topology docker"
docker network create -d cnm --subnet 10.180.0.0/24 --gateway 10.180.0.1 dnet >/dev/null \
  || { cat "$WORK/plugin.log"; fail "network create"; }

step "containers: Docker's addresses, names through Docker's DNS, outside, a published port"
docker "${RUN[@]}" --name web -p 8092:80 --network dnet bb:local sh -c 'while true; do echo hello-from-web | nc -l -p 80; done' >/dev/null \
  || { tail -20 "$WORK/plugin.log"; fail "run web"; }
docker "${RUN[@]}" --name db --network dnet bb:local sleep 600 >/dev/null || fail "run db"
[ "$(ip_of web dnet)" = 10.180.0.2 ] || fail "web's address: $(ip_of web dnet)"
adopted 10.180.0.2; adopted 10.180.0.3
docker exec db ping -c1 -W2 web >/dev/null || fail "db cannot reach web by name"
docker exec db ping -c1 -W2 192.0.2.2 >/dev/null || fail "db cannot reach the outside namespace"
got=""
for _ in $(seq 30); do got=$(ip netns exec outside socat -T2 - TCP:192.0.2.1:8092 </dev/null 2>/dev/null || true); [ -n "$got" ] && break; sleep 0.2; done
[ "$got" = hello-from-web ] || fail "port 8092 from outside: '$got'"
"$CNM" show --topology docker >"$WORK/show"
[ "$(grep -c 'network: ' "$WORK/show")" = 2 ] || { cat "$WORK/show"; fail "show lists $(grep -c 'network: ' "$WORK/show") endpoints"; }
expect_rc 0 "$CNM" plan --topology docker --detailed-exitcode

step "an address flushed inside a container: plan finds it (2), apply repairs it"
pid=$(docker inspect -f "{{.State.Pid}}" db)
nsenter -t "$pid" -n ip addr flush dev eth0 || { nsenter -t "$pid" -n ip -o link; docker inspect -f "{{.State.Status}} {{.RestartCount}}" db; tail -30 "$WORK/plugin.log"; fail "db has no eth0"; }
expect_rc 2 "$CNM" plan --topology docker --detailed-exitcode
expect_rc 0 "$CNM" apply --topology docker
docker exec db ping -c1 -W2 web >/dev/null || fail "db cannot reach web after the repair"

step "the plugin killed, the bridge deleted; restarted, it rebuilds it; a new container reaches the old ones"
kill -9 "$PLUGIN"; wait "$PLUGIN" 2>/dev/null || true
br=$(ip -o addr show | awk '/10.180.0.1\/24/ {print $2}')
[ -n "$br" ] || fail "no bridge holds 10.180.0.1"
ip link del "$br"
plugin
for _ in $(seq 50); do ip -o addr show | grep -q '10.180.0.1/24' && break; sleep 0.1; done
ip -o addr show | grep -q '10.180.0.1/24' || {
  tail -n 30 "$WORK/plugin.log"; ip -o link show type bridge; ip -o -4 addr show
  "$CNM" plan --topology docker || true
  fail "the restarted plugin did not rebuild the bridge"
}
docker "${RUN[@]}" --name late --network dnet bb:local sleep 600 >/dev/null || { tail "$WORK/plugin.log"; fail "run late"; }
adopted 10.180.0.4
docker exec late ping -c1 -W2 web >/dev/null || fail "late cannot reach web"
docker exec web ping -c1 -W2 db >/dev/null || fail "web lost db across the restart"

step "enable_icc=false isolates its containers"
docker network create -d cnm --subnet 10.181.0.0/24 -o com.docker.network.bridge.enable_icc=false iso >/dev/null || fail "iso"
docker "${RUN[@]}" --name i1 --network iso bb:local sleep 600 >/dev/null || fail "run i1"
docker "${RUN[@]}" --name i2 --network iso bb:local sleep 600 >/dev/null || fail "run i2"
adopted 10.181.0.2; adopted 10.181.0.3
if docker exec i1 ping -c1 -W1 10.181.0.3 >/dev/null 2>&1; then fail "icc=false: i1 reaches i2"; fi

step "a pool overlapping another topology is refused, with cnm's reason"
expect_rc 0 "$CNM" apply "$EXAMPLES/quickstart.yaml"
if docker network create -d cnm --subnet 10.88.0.0/25 over >"$WORK/out" 2>&1; then fail "an overlapping pool was accepted"; fi
grep -q 'overlaps subnet 10.88.0.0/24 of topology' "$WORK/out" || { cat "$WORK/out"; fail "Docker's message"; }
expect_rc 0 "$CNM" destroy "$EXAMPLES/quickstart.yaml"

step "docker rm and docker network rm leave nothing of cnm's"
docker rm -f web db late i1 i2 >/dev/null
docker network rm dnet iso >/dev/null
[ -z "$(find /var/lib/cnm/topologies /run/cnm/topologies -mindepth 1 -maxdepth 1 2>/dev/null)" ] || fail "records left: $(find /var/lib/cnm /run/cnm)"
[ -z "$(find /var/lib/cnm/docker-plugin -type f 2>/dev/null)" ] || fail "pending endpoints left"
ip -o link | grep -q 'cnm:\|ve-' && { ip -o link; fail "links of cnm's left"; }
[ -z "$(ls /run/netns | grep -v '^outside$')" ] || fail "cnm keeps a mount of a container's namespace: $(ls /run/netns)"
nft list tables | grep -q cnm-docker && fail "the firewall table is left"
echo PASS
