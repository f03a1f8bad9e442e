#!/usr/bin/env bash
# cnm as Docker's network driver, the part served so far: a real dockerd in
# this private host finds `cnm docker-plugin` at /run/docker/plugins/cnm.sock;
# `docker network create -d cnm --subnet --gateway -o …` makes the network
# in the topology `docker` (Docker's pool, gateway and options; the bridge
# holds the gateway); a pool overlapping another topology is refused with
# cnm's reason in Docker's message; `docker network rm` leaves nothing of
# cnm's in the kernel or the records; a container on the network is refused
# with a message saying endpoints are not served yet.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../support/docker.sh"
export PATH="/usr/bin:$PATH"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; docker_down; rm -rf "$WORK"' EXIT

step "the plugin, then dockerd"
"$CNM" docker-plugin >"$WORK/plugin.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [ -S /run/docker/plugins/cnm.sock ] && break; sleep 0.1; done
[ -S /run/docker/plugins/cnm.sock ] || { cat "$WORK/plugin.log"; fail "no socket"; }
docker_up || fail "dockerd did not start"

step "docker network create -d cnm: the network is cnm's, with Docker's pool and gateway"
id=$(docker network create -d cnm --subnet 10.180.0.0/24 --gateway 10.180.0.1 \
  -o com.docker.network.bridge.enable_icc=false dnet) || { cat "$WORK/plugin.log"; fail "network create"; }
short=${id:0:12}
"$CNM" show --topology docker >"$WORK/show"
grep -q "^  $short:" "$WORK/show" || { cat "$WORK/show"; fail "show --topology docker lacks $short"; }
grep -q 'subnet: 10.180.0.0/24' "$WORK/show" || fail "the pool"
ip -br addr | grep -q '10.180.0.1/24' || { ip -br addr; fail "no bridge holds the gateway"; }
expect_rc 0 "$CNM" plan --topology docker --detailed-exitcode

step "a pool overlapping another topology is refused, with cnm's reason"
expect_rc 0 "$CNM" apply "$EXAMPLES/quickstart.yaml"
grep -q 'subnet: 10.88.0.0/24' "$EXAMPLES/quickstart.yaml" || fail "quickstart's subnet changed"
if docker network create -d cnm --subnet 10.88.0.0/25 over >"$WORK/out" 2>&1; then fail "an overlapping pool was accepted"; fi
grep -q 'overlaps subnet 10.88.0.0/24 of topology' "$WORK/out" || { cat "$WORK/out"; fail "Docker's message does not carry cnm's"; }
expect_rc 0 "$CNM" destroy "$EXAMPLES/quickstart.yaml"

step "a container on it: refused, saying endpoints are not served yet"
if docker run -d --network dnet bb:local sleep 60 >"$WORK/out" 2>&1; then fail "a container was started"; fi
grep -q 'not served yet' "$WORK/out" || { cat "$WORK/out"; fail "Docker's message"; }
docker rm -f "$(docker ps -aq)" >/dev/null 2>&1 || true

step "docker network rm leaves nothing of cnm's"
docker network rm dnet >/dev/null
[ -z "$(find /var/lib/cnm/topologies /run/cnm/topologies -mindepth 1 -maxdepth 1 2>/dev/null)" ] || fail "records left"
ip -o link | grep -q 'cnm:' && fail "links of cnm's left"
echo PASS
