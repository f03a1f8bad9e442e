# ports: ["80"] (Docker's -p 80): cnm chooses the host port from the
# ephemeral range (skipping one a process listens on), shows it in plan
# and show, keeps it across applies and edits, and TCP reaches the
# sandbox through it.
source "$(dirname "$0")/lib.sh"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
bg() { "$@" >/dev/null 2>&1 & PIDS+=($!); }

# This private host's ephemeral range (a per-namespace sysctl), and a
# process holding its first port.
echo "40000 40100" >/proc/sys/net/ipv4/ip_local_port_range
bg socat TCP-LISTEN:40000,fork,reuseaddr SYSTEM:'echo squatter'
for _ in $(seq 50); do ss -Hltn | grep >/dev/null ':40000 ' && break; sleep 0.05; done

T="$WORK/eph.yaml"
cat >"$T" <<'YAML'
version: 1
name: eph
networks:
  lan: { subnet: 10.81.0.0/24 }
sandboxes: { web: {}, api: {} }
endpoints:
  web-lan: { network: lan, sandbox: web, ports: ["80", "127.0.0.1::81/tcp"] }
  api-lan: { network: lan, sandbox: api, ports: [{ target: 8080 }] }
YAML

step "plan shows the chosen host ports"
expect_rc 2 cnm plan --detailed-exitcode "$T"
grep -q 'port 0.0.0.0:40001/tcp → api-lan 10.81.0.2:8080' "$WORK/out" || { cat "$WORK/out"; fail "plan does not show 40001 → api:8080"; }
grep -q 'port 0.0.0.0:40002/tcp → web-lan 10.81.0.3:80' "$WORK/out" || fail "plan does not show 40002 → web:80"
grep -q 'port 127.0.0.1:40003/tcp → web-lan 10.81.0.3:81' "$WORK/out" || fail "plan does not show 127.0.0.1:40003 → web:81"
cnm apply "$T" >/dev/null
converged "$T"

step "TCP through the chosen port"
bg "$CNM" exec web -- socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:'echo web-80'
bg "$CNM" exec api -- socat TCP-LISTEN:8080,fork,reuseaddr SYSTEM:'echo api-8080'
answer() { for _ in $(seq 20); do out=$(socat -T2 - "TCP:$1" </dev/null 2>/dev/null || true); [ "$out" = "$2" ] && return 0; sleep 0.1; done; fail "$1 answered '$out', not $2"; }
answer 127.0.0.1:40002 web-80
answer 10.81.0.1:40001 api-8080
answer 127.0.0.1:40000 squatter

step "show prints the chosen ports"
cnm show --topology eph >"$WORK/show.yaml"
grep -q '40002:80/tcp' "$WORK/show.yaml" || { cat "$WORK/show.yaml"; fail "show does not print 40002:80/tcp"; }
grep -q '127.0.0.1:40003:81/tcp' "$WORK/show.yaml" || fail "show does not print 127.0.0.1:40003:81/tcp"
expect_rc 0 cnm plan --detailed-exitcode "$WORK/show.yaml"

step "kept across edits: a freed port is reused, the others keep theirs"
sed -i 's|ports: \["80", "127.0.0.1::81/tcp"\]|ports: ["80"]|' "$T"
cnm apply "$T" >/dev/null
sed -i 's|api-lan: { network: lan, sandbox: api, ports: \[{ target: 8080 }\] }|api-lan: { network: lan, sandbox: api, ports: [{ target: 8080 }, "9090"] }|' "$T"
expect_rc 2 cnm plan --detailed-exitcode "$T"
grep -q 'port 0.0.0.0:40003/tcp → api-lan 10.81.0.2:9090' "$WORK/out" || { cat "$WORK/out"; fail "the new port does not take the freed 40003"; }
grep -q '4000[12]' "$WORK/out" && { cat "$WORK/out"; fail "kept ports are in the plan"; }
cnm apply "$T" >/dev/null
converged "$T"
answer 127.0.0.1:40002 web-80
answer 10.81.0.1:40001 api-8080

step "kept when the kernel lost the rules (firewall flushed)"
nft delete table inet cnm-eph
cnm apply "$T" >/dev/null
answer 127.0.0.1:40002 web-80
cnm destroy "$T" >/dev/null
echo PASS
