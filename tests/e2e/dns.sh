#!/usr/bin/env bash
# The embedded resolver (issue 15): real queries from inside sandboxes to
# 127.0.0.11 — peers by sandbox name, hostname, alias and name.network,
# round robin over a shared alias, PTR, NXDOMAIN for names on networks not
# shared, forwarding (UDP and, for a large answer, TCP) to an upstream
# dnsmasq in an "outside" namespace, no forwarding from internal-only
# sandboxes, a systemd-stub host, live additions with no file rewritten,
# a SIGKILLed resolver restarted by apply and by watch, and a destroy
# that leaves nothing behind.
source "$(dirname "$0")/lib.sh"
command -v dig >/dev/null || fail "dig (bind9-dnsutils) is required"
command -v dnsmasq >/dev/null || fail "dnsmasq (dnsmasq-base) is required"
command -v dnsperf >/dev/null || fail "dnsperf is required (a sandbox flooding its resolver)"

T="$WORK/dns.yaml"
cat >"$T" <<'YAML'
version: 1
name: dns
networks:
  front: { subnet: 10.30.0.0/24, ipv6: { subnet: "fd00:30::/64" } }
  back: { subnet: 10.31.0.0/24, internal: true }
  other: { subnet: 10.32.0.0/24 }
sandboxes:
  web: { hostname: www }
  api: { dns: { search: [corp.example], options: ["attempts:2"] } }
  db1: {}
  db2: {}
  lone: {}
endpoints:
  web-front: { network: front, sandbox: web, aliases: [portal] }
  web-back: { network: back, sandbox: web }
  api-front: { network: front, sandbox: api }
  db1-back: { network: back, sandbox: db1, aliases: [store] }
  db2-back: { network: back, sandbox: db2, aliases: [store] }
  lone-other: { network: other, sandbox: lone }
YAML

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

step "an upstream: dnsmasq in an outside namespace, the host's resolver"
ip netns add outside
ip link add up0 type veth peer name up1
ip link set up1 netns outside
ip addr add 172.31.99.1/24 dev up0 && ip link set up0 up
ip -n outside addr add 172.31.99.2/24 dev up1
ip -n outside link set up1 up && ip -n outside link set lo up
big=()
for i in $(seq 1 12); do big+=("--txt-record=big.example.test,record-$i-$(printf 'x%.0s' $(seq 1 180))"); done
ip netns exec outside dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts --user=root \
  --listen-address=172.31.99.2 --bind-interfaces --pid-file= \
  --address=/example.test/198.51.100.7 "${big[@]}" 2>"$WORK/dnsmasq.log" &
pids+=($!)
printf 'nameserver 172.31.99.2\nsearch corp.example\n' >"$WORK/resolv"
mount --bind "$WORK/resolv" /etc/resolv.conf
for _ in $(seq 1 100); do dig +short +time=1 +tries=1 @172.31.99.2 a.example.test >/dev/null 2>&1 && break; sleep 0.05; done

step "apply starts the resolver"
expect_rc 0 "$CNM" apply "$T"
converged "$T"
id=$(cat /run/cnm/resolver/identity)
rpid=$(sed -E 's/.*"pid":([0-9]+).*/\1/' <<<"$id")
[ -d "/proc/$rpid" ] || fail "no resolver process ($id)"
grep -q 'resolver' "/proc/$rpid/cmdline" || fail "pid $rpid is not the resolver"

q() { # q SANDBOX ARGS... : dig from inside a sandbox, answers only
  local sb=$1; shift
  ip netns exec "dns-$sb" dig +time=2 +tries=1 +short @127.0.0.11 "$@"
}
status_of() { # status_of SANDBOX NAME [TYPE]
  local out; out=$(ip netns exec "dns-$1" dig +time=3 +tries=1 @127.0.0.11 "${@:2}")
  sed -nE 's/.*status: ([A-Z]+).*/\1/p' <<<"$out"
}
web_front=$(q web web.front)
[ -n "$web_front" ] || fail "web.front does not resolve"

step "files: own names only, resolv.conf names 127.0.0.11 with search and options kept"
hosts=$(cat /etc/netns/dns-web/hosts)
grep -qw 'db1' <<<"$hosts" && fail "web's hosts file lists a peer: $hosts"
grep -qw 'www' <<<"$hosts" || fail "web's hosts file lacks its own names: $hosts"
conf=$(cat /etc/netns/dns-api/resolv.conf)
[ "$(grep -c '^nameserver' <<<"$conf")" = 1 ] && grep -q '^nameserver 127.0.0.11$' <<<"$conf" \
  || fail "resolv.conf does not name only 127.0.0.11: $conf"
grep -q '^search corp.example$' <<<"$conf" || fail "search list lost: $conf"
grep -q 'attempts:2' <<<"$conf" || fail "options lost: $conf"

step "peers by sandbox name, hostname, alias and name.network (dig and getent)"
api_ip=$(q web api)
[[ "$api_ip" =~ ^10\.30\.0\. ]] || fail "api from web: '$api_ip'"
[ "$(q api www | sort)" = "$web_front" ] || fail "hostname www from api: $(q api www)"
[ "$(q api portal)" = "$web_front" ] || fail "alias portal from api: $(q api portal)"
[ "$(q api api.front)" = "$api_ip" ] || fail "api.front"
[ -n "$(q web db1.back)" ] || fail "db1.back from web"
[ -n "$(q api web AAAA)" ] || fail "no AAAA for web from api"
got=$("$CNM" exec api -- getent ahostsv4 portal)
grep -q "$web_front" <<<"$got" || fail "getent hosts portal from api: $got"
got=$("$CNM" exec db1 -- getent ahostsv4 db2)
grep -q '^10\.31\.0\.' <<<"$got" || fail "getent db2 from db1: $got"

step "a known name without a record of the asked family: empty NOERROR"
[ "$(status_of web db1 AAAA)" = NOERROR ] || fail "db1 AAAA is not NOERROR"
[ -z "$(q web db1 AAAA)" ] || fail "db1 has no IPv6 address, but AAAA answered"

step "round robin over the two holders of alias store"
all=$(q web store | sort | tr '\n' ' ')
[ "$(wc -w <<<"$all")" = 2 ] || fail "store should have two addresses: $all"
firsts=$(for _ in 1 2 3 4; do q web store | head -1; done | sort -u | wc -l)
[ "$firsts" = 2 ] || fail "the first address of store never rotates"

step "one sandbox flooding the resolver does not stall the others"
for _ in $(seq 1 50); do echo "web A"; echo "nothing.example.test A"; done >"$WORK/flood"
ip netns exec dns-api dnsperf -s 127.0.0.11 -d "$WORK/flood" -l 4 -c 8 -q 4000 -T 2 >"$WORK/flood.out" 2>&1 &
flood=$!
sleep 0.5
for _ in $(seq 1 20); do
  [ "$(q db1 db2)" = "$(q db2 db2)" ] || fail "db1 got no answer while api floods the resolver"
done
wait "$flood" || true
grep -q 'Queries completed' "$WORK/flood.out" || fail "the flood did not run: $(cat "$WORK/flood.out")"

step "PTR"
db1_ip=$(q web db1)
ptr=$(q web -x "$db1_ip")
# Docker's answer: <sandbox>.<network of that address>.
[ "$ptr" = "db1.back." ] || fail "PTR of $db1_ip: '$ptr'"

step "names on networks the asker does not share: NXDOMAIN"
[ "$(status_of web lone)" = NXDOMAIN ] || fail "lone from web is not NXDOMAIN"
[ "$(status_of web lone.other)" = NXDOMAIN ] || fail "lone.other from web"
[ "$(status_of lone web)" = NXDOMAIN ] || fail "web from lone"
[ "$(status_of api db1)" = NXDOMAIN ] || fail "db1 (back) from api (front only)"
[ "$(status_of lone "$(tr . '\n' <<<"$db1_ip" | tac | paste -sd.).in-addr.arpa" PTR)" = NXDOMAIN ] \
  || fail "PTR of a hidden address"

step "forwarding to the upstream, UDP and TCP (a large answer)"
[ "$(q web a.example.test)" = 198.51.100.7 ] || fail "forwarded name: $(q web a.example.test)"
got=$("$CNM" exec web -- getent hosts www.example.test)
grep -q 198.51.100.7 <<<"$got" || fail "getent through the resolver to upstream: $got"
[ "$(q web +tcp big.example.test TXT | wc -l)" = 12 ] || fail "large TXT answer over TCP"
[ "$(q web +noedns big.example.test TXT | wc -l)" = 12 ] || fail "truncated UDP answer did not fall back to TCP"

step "internal-only sandboxes do not forward"
st=$(status_of db1 a.example.test)
[ "$st" != NOERROR ] || fail "db1 (internal only) forwarded: $st"
[ -z "$(q db1 a.example.test)" ] || fail "db1 got an upstream answer"

step "a sandbox added by a second apply resolves at once, no file rewritten"
before=$(find /etc/netns -type f | sort | xargs md5sum)
sed -i 's/^  lone: {}$/  lone: {}\n  cache: {}/; s/^  lone-other:.*$/&\n  cache-back: { network: back, sandbox: cache, aliases: [store] }/' "$T"
expect_rc 0 "$CNM" apply "$T"
[ -n "$(q db1 cache)" ] || fail "db1 does not resolve the new sandbox cache"
[ "$(q web store | wc -l)" = 3 ] || fail "the new holder of alias store is not returned"
after=$(find /etc/netns -type f ! -path '*dns-cache*' | sort | xargs md5sum)
[ "$before" = "$after" ] || fail "files of other sandboxes were rewritten: $(diff <(echo "$before") <(echo "$after"))"
[ "$(cat /run/cnm/resolver/identity)" = "$id" ] || fail "the resolver was restarted instead of reloaded"

step "a reload drops no query: 200 lookups while names change"
( for _ in $(seq 1 200); do q web api || echo FAIL; done >"$WORK/during" 2>&1 ) &
loop=$!
sed -i 's/  api-front: { network: front, sandbox: api }/  api-front: { network: front, sandbox: api, aliases: [gateway-api] }/' "$T"
expect_rc 0 "$CNM" apply "$T"
[ "$(q web gateway-api)" = "$api_ip" ] || fail "the new alias does not resolve"
wait "$loop"
[ "$(grep -c "^$api_ip$" "$WORK/during")" = 200 ] || fail "queries failed during a reload: $(grep -v "^$api_ip$" "$WORK/during" | sort | uniq -c)"
[ "$(cat /run/cnm/resolver/identity)" = "$id" ] || fail "the resolver was restarted instead of reloaded"

step "two topologies share the resolver; destroying one keeps it for the other"
cat >"$WORK/other.yaml" <<'YAML'
version: 1
name: dns2
networks:
  n: { subnet: 10.33.0.0/24 }
sandboxes: { p: {}, r: {} }
endpoints:
  p-n: { network: n, sandbox: p }
  r-n: { network: n, sandbox: r }
YAML
expect_rc 0 "$CNM" apply "$WORK/other.yaml"
[ "$(cat /run/cnm/resolver/identity)" = "$id" ] || fail "a second topology started a second resolver"
[ -n "$(ip netns exec dns2-p dig +short +time=2 +tries=1 @127.0.0.11 r)" ] || fail "dns2: p does not resolve r"
[ "$(status_of web r)" != NOERROR ] || fail "a name of another topology resolves in this one"
expect_rc 0 "$CNM" destroy "$WORK/other.yaml"
[ "$(cat /run/cnm/resolver/identity)" = "$id" ] || fail "destroying one topology stopped the resolver of the other"
[ "$(q web api)" = "$api_ip" ] || fail "the resolver no longer answers after another topology went"

step "a killed resolver is drift; apply restarts it"
kill -9 "$rpid"
for _ in $(seq 1 100); do [ -d "/proc/$rpid" ] || break; sleep 0.02; done
pending "$T"
grep -q 'resolver' "$WORK/out" || fail "plan does not show the resolver: $(cat "$WORK/out")"
expect_rc 0 "$CNM" apply "$T"
[ "$(cat /run/cnm/resolver/identity)" != "$id" ] || fail "no new resolver"
[ "$(q web api)" = "$api_ip" ] || fail "the restarted resolver does not answer"
converged "$T"

step "watch restarts a killed resolver"
"$CNM" watch "$T" >"$WORK/watch.log" 2>&1 &
wpid=$!
pids+=("$wpid")
for _ in $(seq 1 100); do grep -q 'converged\|no changes\|No changes' "$WORK/watch.log" && break; sleep 0.05; done
id=$(cat /run/cnm/resolver/identity)
rpid=$(sed -E 's/.*"pid":([0-9]+).*/\1/' <<<"$id")
kill -9 "$rpid"
ok=
for _ in $(seq 1 100); do
  cur=$(cat /run/cnm/resolver/identity 2>/dev/null || true)
  if [ -n "$cur" ] && [ "$cur" != "$id" ] && [ "$(q web api 2>/dev/null)" = "$api_ip" ]; then ok=1; break; fi
  sleep 0.1
done
[ -n "$ok" ] || { cat "$WORK/watch.log"; fail "watch did not restart the resolver within 10 s"; }
kill -TERM "$wpid"; wait "$wpid" || true

step "dns: { embedded: false } keeps hosts files"
sed -i 's/^name: dns$/name: dns\ndns: { embedded: false }/' "$T"
expect_rc 0 "$CNM" apply "$T"
grep -qw 'api' /etc/netns/dns-web/hosts || fail "hosts file mode: web does not list api"
grep -q '^nameserver 172.31.99.2$' /etc/netns/dns-web/resolv.conf || fail "hosts file mode: host's nameserver"
for _ in $(seq 1 100); do pgrep -f 'cnm resolver' >/dev/null || break; sleep 0.05; done
pgrep -f 'cnm resolver' >/dev/null && fail "the resolver still runs with no topology needing it"
sed -i '/^dns: { embedded: false }$/d' "$T"

step "a host resolv.conf naming only systemd's stub: upstreams from systemd's list"
printf 'nameserver 127.0.0.53\nsearch corp.example\n' >"$WORK/resolv"
mkdir -p /run/systemd/resolve
printf 'nameserver 172.31.99.2\n' >/run/systemd/resolve/resolv.conf
expect_rc 0 "$CNM" apply "$T"
[ "$(q web b.example.test)" = 198.51.100.7 ] || fail "no upstream behind the systemd stub"

step "destroy leaves no resolver process, socket or table"
expect_rc 0 "$CNM" destroy "$T"
for _ in $(seq 1 100); do pgrep -f 'cnm resolver' >/dev/null || break; sleep 0.05; done
pgrep -af 'cnm resolver' && fail "a resolver process is left"
ss -Hlnup | grep -q '127.0.0.11' && fail "a socket on 127.0.0.11 is left"
for ns in $(ip netns list | awk '{print $1}'); do
  [ "$ns" = outside ] && continue
  fail "namespace $ns is left"
done
[ -z "$(nft list tables 2>/dev/null)" ] || fail "nft tables are left: $(nft list tables)"
[ ! -e /run/cnm/resolver/identity ] || fail "the resolver's identity is left"
echo PASS
