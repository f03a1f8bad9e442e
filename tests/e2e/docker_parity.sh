# cnm next to a real dockerd on one (private) host: the same small world
# built by Docker and by cnm, compared row by row (addresses, MACs,
# resolv.conf, hosts, DNS answers, a container's own DNS server on :53,
# published ports from outside, icc off, traffic through Docker's FORWARD
# policy DROP); a real Docker container wired with netns: docker:NAME (it
# gets eth1, reaches a cnm sandbox, keeps Docker's DNS), wired again after
# `docker restart`; destroy leaves Docker's containers, networks and
# iptables rules as they were.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/../support/docker.sh"
for c in dockerd busybox dig dnsmasq socat iptables-save; do
  command -v "$c" >/dev/null || [ -x "/usr/sbin/$c" ] || fail "$c is required (apt-get install docker.io busybox-static bind9-dnsutils dnsmasq-base socat iptables)"
done
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; docker_down; rm -rf "$WORK"' EXIT
# The docker.io client first (cnm's docker:NAME runs `docker inspect`).
export PATH="/usr/bin:$PATH"
ROWS="$WORK/rows"
row() { printf '| %s | %s | %s |\n' "$1" "$2" "$3" >>"$ROWS"; }
same() { [ "$2" = "$3" ] || fail "$1: Docker says '$2', cnm says '$3'"; row "$1" "$2" "$3"; }

# This host's upstream DNS: a dnsmasq on 203.0.113.53, named by the
# host's resolv.conf (with search domains and options both keep).
ip addr add 203.0.113.53/32 dev lo
dnsmasq --no-resolv --no-hosts --listen-address=203.0.113.53 --bind-interfaces \
  --address=/outside.test/192.0.2.2 --pid-file="$WORK/up.pid" --log-facility="$WORK/up.log"
PIDS+=("$(cat "$WORK/up.pid")")
printf 'nameserver 203.0.113.53\nsearch example.com corp.local\noptions timeout:3 attempts:2\n' >"$WORK/resolv.conf"
mount --bind "$WORK/resolv.conf" /etc/resolv.conf
# The outside world: a namespace routed to this host.
ip netns add outside
ip link add ext0 type veth peer name ext1 netns outside
ip addr add 192.0.2.1/24 dev ext0
ip link set ext0 up
ip netns exec outside ip addr add 192.0.2.2/24 dev ext1
ip netns exec outside ip link set ext1 up
ip netns exec outside ip link set lo up
ip netns exec outside ip route add default via 192.0.2.1

step "dockerd in this private host; Docker's world"
docker_up || fail "dockerd did not start"
[ "$(iptables -S FORWARD | head -1)" = "-P FORWARD DROP" ] || fail "dockerd did not set FORWARD to DROP: $(iptables -S FORWARD | head -1)"
docker network create --subnet 10.123.0.0/24 dnet >/dev/null
docker network create --subnet 10.126.0.0/24 -o com.docker.network.bridge.enable_icc=false diso >/dev/null
docker run -d --name api --network dnet --network-alias www bb:local sleep 600 >/dev/null
docker run -d --name db --network dnet bb:local sleep 600 >/dev/null
docker run -d --name web --network dnet --network-alias www -p 8092:80 bb:local nc -ll -p 80 -e echo docker-web >/dev/null
docker run -d --name d1 --network diso bb:local sleep 600 >/dev/null
docker run -d --name d2 --network diso bb:local sleep 600 >/dev/null
docker_state() {
  docker ps -a --format '{{.Names}} {{.Status}}' | sed 's/Up [^)]*/Up/' | sort
  docker network ls --format '{{.Name}} {{.Driver}}' | sort
  iptables-save | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
}
docker_state >"$WORK/docker-before"

step "cnm's world, applied next to Docker"
T="$WORK/cw.yaml"
cat >"$T" <<'YAML'
version: 1
name: cw
networks:
  lan: { subnet: 10.124.0.0/24 }
  iso: { subnet: 10.125.0.0/24, options: { icc: false } }
sandboxes:
  api: {}
  db: {}
  web: {}
  i1: {}
  i2: {}
endpoints:
  api-lan: { network: lan, sandbox: api, aliases: [www] }
  db-lan: { network: lan, sandbox: db }
  web-lan: { network: lan, sandbox: web, aliases: [www], ports: ["8093:80"] }
  i1-iso: { network: iso, sandbox: i1 }
  i2-iso: { network: iso, sandbox: i2 }
YAML
expect_rc 0 cnm apply "$T"
converged "$T"
echo "| row | Docker 20.10 | cnm |" >"$ROWS"
echo "|---|---|---|" >>"$ROWS"

step "addresses and MACs: lowest free, in order; MAC 02:42 and the address"
for c in api db web; do
  d_ip=$(docker inspect -f '{{.NetworkSettings.Networks.dnet.IPAddress}}' "$c")
  d_mac=$(docker inspect -f '{{.NetworkSettings.Networks.dnet.MacAddress}}' "$c")
  c_ip=$(ip netns exec "cw-$c" ip -o -4 addr show eth0 | awk '{print $4}' | cut -d/ -f1)
  c_mac=$(cat "/sys/class/net/eth0/address" 2>/dev/null; ip netns exec "cw-$c" cat /sys/class/net/eth0/address)
  c_mac=$(echo "$c_mac" | tail -1)
  same "address of $c (last byte)" "${d_ip##*.}" "${c_ip##*.}"
  mac_of() { printf '02:42:%02x:%02x:%02x:%02x' $(echo "$1" | tr . ' '); }
  same "MAC of $c (02:42 + address)" "$([ "$d_mac" = "$(mac_of "$d_ip")" ] && echo yes || echo "$d_mac")" \
    "$([ "$c_mac" = "$(mac_of "$c_ip")" ] && echo yes || echo "$c_mac")"
done

step "resolv.conf and hosts"
d_resolv=$(docker exec web cat /etc/resolv.conf)
c_resolv=$(grep -v '^#' /etc/netns/cw-web/resolv.conf)
same "resolv.conf" "$(echo "$d_resolv" | paste -sd'/')" "$(echo "$c_resolv" | paste -sd'/')"
d_hosts=$(docker exec web cat /etc/hosts)
c_hosts=$(grep -v '^#' /etc/netns/cw-web/hosts)
same "hosts: the six standard lines" "$(echo "$d_hosts" | head -6 | paste -sd'/')" "$(echo "$c_hosts" | head -6 | paste -sd'/')"
d_own=$(echo "$d_hosts" | sed -n 7p | cut -f1); c_own=$(echo "$c_hosts" | sed -n 7p | cut -f1)
same "hosts: then its own address (last byte)" "${d_own##*.}" "${c_own##*.}"

step "DNS answers: name, name.network, alias round robin, PTR, forwarded"
dq() { in_dk web dig +short +time=1 +tries=2 @127.0.0.11 "$@"; }
cq() { "$CNM" exec web -- dig +short +time=1 +tries=2 @127.0.0.11 "$@"; }
last() { sed 's/.*\.//' | sort | paste -sd,; }
same "A db (last byte)" "$(dq db | last)" "$(cq db | last)"
same "A db.<network> (last byte)" "$(dq db.dnet | last)" "$(cq db.lan | last)"
same "A www: both holders (last bytes)" "$(dq www | last)" "$(cq www | last)"
d_first=$(for _ in 1 2 3 4 5 6 7 8; do dq www | head -1; done | sort -u | wc -l)
c_first=$(for _ in 1 2 3 4 5 6 7 8; do cq www | head -1; done | sort -u | wc -l)
same "www: first answer varies (round robin)" "$([ "$d_first" -gt 1 ] && echo yes || echo no)" "$([ "$c_first" -gt 1 ] && echo yes || echo no)"
d_db=$(dq db); c_db=$(cq db)
same "PTR of db's address" "$(in_dk web dig +short +time=1 @127.0.0.11 -x "$d_db" | sed 's/dnet\.$/NETWORK./')" \
  "$("$CNM" exec web -- dig +short +time=1 @127.0.0.11 -x "$c_db" | sed 's/lan\.$/NETWORK./')"
same "a forwarded name" "$(dq outside.test)" "$(cq outside.test)"

step "a container's own DNS server on :53 (dnsmasq, default configuration) next to 127.0.0.11"
in_dk db dnsmasq --keep-in-foreground --pid-file="$WORK/d-dnsmasq.pid" >"$WORK/d-dnsmasq.log" 2>&1 & PIDS+=($!)
"$CNM" exec db -- dnsmasq --keep-in-foreground --pid-file="$WORK/c-dnsmasq.pid" >"$WORK/c-dnsmasq.log" 2>&1 & PIDS+=($!)
sleep 0.7
bound() { grep -qi "failed to create listening socket" "$1" && echo "no: $(head -1 "$1")" || echo yes; }
same "dnsmasq binds :53" "$(bound "$WORK/d-dnsmasq.log")" "$(bound "$WORK/c-dnsmasq.log")"
dbq() { in_dk db dig +short +time=1 +tries=2 @127.0.0.11 "$@"; }
cbq() { "$CNM" exec db -- dig +short +time=1 +tries=2 @127.0.0.11 "$@"; }
same "127.0.0.11 still answers next to it (last byte of web)" "$(dbq web | last)" "$(cbq web | last)"
d_self=$(docker inspect -f '{{.NetworkSettings.Networks.dnet.IPAddress}}' db)
same "the container's own server answers on its address" \
  "$(in_dk db dig +short +time=1 +tries=2 @"$d_self" outside.test)" \
  "$("$CNM" exec db -- dig +short +time=1 +tries=2 @"$(ip netns exec cw-db ip -o -4 addr show eth0 | awk '{print $4}' | cut -d/ -f1)" outside.test)"

step "published ports reached from outside, both at once"
"$CNM" exec web -- socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:'echo cnm-web' >/dev/null 2>&1 & PIDS+=($!)
sleep 0.4
ask() { ip netns exec outside socat -T2 - TCP:192.0.2.1:"$1",connect-timeout=2 </dev/null 2>/dev/null || true; }
same "published port from outside" "$(ask 8092 | sed 's/docker-//')" "$(ask 8093 | sed 's/cnm-//')"

step "icc off: no traffic between two containers of the network; the gateway answers"
pingable() { "$@" >/dev/null 2>&1 && echo yes || echo no; }
d2_ip=$(docker inspect -f '{{.NetworkSettings.Networks.diso.IPAddress}}' d2)
i2_ip=$(ip netns exec cw-i2 ip -o -4 addr show eth0 | awk '{print $4}' | cut -d/ -f1)
same "icc off: a peer" "$(pingable in_dk d1 ping -c1 -W1 "$d2_ip")" "$(pingable "$CNM" exec i1 -- ping -c1 -W1 "$i2_ip")"
same "icc off: the gateway" "$(pingable in_dk d1 ping -c1 -W1 10.126.0.1)" "$(pingable "$CNM" exec i1 -- ping -c1 -W1 10.125.0.1)"

step "traffic through Docker's FORWARD policy DROP"
same "to the outside world" "$(pingable in_dk web ping -c1 -W1 192.0.2.2)" "$(pingable "$CNM" exec web -- ping -c1 -W1 192.0.2.2)"
same "between two containers of a network" "$(pingable in_dk web ping -c1 -W1 "$d_db")" "$(pingable "$CNM" exec web -- ping -c1 -W1 "$c_db")"

step "a real Docker container wired with netns: docker:NAME"
docker run -d --name dkc --network dnet bb:local sleep 600 >/dev/null
W="$WORK/wire.yaml"
printf 'version: 1\nname: cw2\nnetworks:\n  wire: { subnet: 10.127.0.0/24 }\nsandboxes:\n  dk: { netns: "docker:dkc" }\n  peer: {}\nendpoints:\n  dk-wire: { network: wire, sandbox: dk }\n  peer-wire: { network: wire, sandbox: peer }\n' >"$W"
expect_rc 0 cnm apply "$W"
grep >/dev/null "endpoint dk-wire (dk eth1" "$WORK/out" || fail "not eth1: $(cat "$WORK/out")"
grep >/dev/null "sandbox dk: 127.0.0.11 is already served in the namespace it borrows (docker:dkc)" "$WORK/err" || fail "no note about Docker's DNS: $(cat "$WORK/err")"
converged "$W"
row "a container wired by cnm" "docker network connect: eth1" "$(in_dk dkc ip -o link show eth1 >/dev/null && echo eth1)"
in_dk dkc ip -o link show eth0 >/dev/null || fail "Docker's eth0 is gone"
pingable in_dk dkc ping -c1 -W1 10.127.0.3 | grep -q yes || fail "dkc cannot reach cnm's peer over eth1"
[ "$(in_dk dkc dig +short +time=1 +tries=2 @127.0.0.11 db)" = "$d_db" ] || fail "dkc lost Docker's names"
in_dk dkc nft list table ip cnm-dns >/dev/null 2>&1 && fail "cnm put a DNS table in Docker's container"
in_dk dkc ip route show default | grep >/dev/null "dev eth0" || fail "Docker's default route was replaced: $(in_dk dkc ip route)"

step "docker restart: a new namespace, wired again"
old_ns=$(readlink "/proc/$(dk_pid dkc)/ns/net")
docker restart -t 0 dkc >/dev/null
[ "$(readlink "/proc/$(dk_pid dkc)/ns/net")" != "$old_ns" ] || fail "docker restart kept the namespace"
pending "$W"
expect_rc 0 cnm apply "$W"
converged "$W"
in_dk dkc ip -o link show eth1 >/dev/null || fail "no eth1 after docker restart"
pingable in_dk dkc ping -c1 -W1 10.127.0.3 | grep -q yes || fail "dkc cannot reach cnm's peer after docker restart"
[ "$(in_dk dkc dig +short +time=1 +tries=2 @127.0.0.11 db)" = "$d_db" ] || fail "dkc lost Docker's names after the restart"

step "destroy leaves Docker's containers, networks and iptables rules as they were"
expect_rc 0 cnm destroy "$W"
expect_rc 0 cnm destroy "$T"
in_dk dkc ip -o link show eth1 >/dev/null 2>&1 && fail "cnm's eth1 is left in dkc"
in_dk dkc ip -o link show eth0 >/dev/null || fail "Docker's eth0 of dkc is gone"
docker rm -f dkc >/dev/null
docker_state >"$WORK/docker-after"
diff -u "$WORK/docker-before" "$WORK/docker-after" || fail "Docker's state changed"
cat "$ROWS"
echo PASS
