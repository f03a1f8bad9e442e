# The shared resolver under hostile sandboxes, and port 53 left to the
# workload: an EDNS flood to an upstream that never answers stays within
# its memory bounds and does not starve another sandbox; a resolver frozen
# (SIGSTOP) or killed while an apply waits for its reload is replaced and
# the apply converges; a sandbox runs its own DNS server on :53 (dnsmasq
# with its default configuration, a TCP listener) next to 127.0.0.11.
source "$(dirname "$0")/lib.sh"
command -v dig >/dev/null || fail "dig (bind9-dnsutils) is required"
command -v dnsmasq >/dev/null || fail "dnsmasq (dnsmasq-base) is required"
PIDS=()
trap 'if [ "${#PIDS[@]}" -gt 0 ]; then kill -CONT "${PIDS[@]}" 2>/dev/null || true; kill "${PIDS[@]}" 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT

# The upstream: an address the host drops silently (it never answers).
ip route add blackhole 198.51.100.53/32
T="$WORK/t.yaml"
cat >"$T" <<'YAML'
version: 1
name: hostile
networks:
  n: { subnet: 10.97.0.0/24 }
sandboxes:
  h1: { dns: { servers: [198.51.100.53] } }
  h2: { dns: { servers: [198.51.100.53] } }
  v: {}
  peer: {}
endpoints:
  h1-n: { network: n, sandbox: h1 }
  h2-n: { network: n, sandbox: h2 }
  v-n: { network: n, sandbox: v }
  peer-n: { network: n, sandbox: peer }
YAML
expect_rc 0 cnm apply "$T"
resolver_pid() { pgrep -f -x "$CNM resolver -v" | head -1; }
# What the resolver allocated (anonymous memory): a debug build's code
# alone maps 20 MB more of its file, a release build's a few.
rss_kb() { awk '/^RssAnon/ {print $2}' "/proc/$(resolver_pid)/status"; }
vm_kb() { awk '/^VmRSS/ {print $2}' "/proc/$(resolver_pid)/status"; }
answers() { "$CNM" exec "$1" -- dig +short +time=1 +tries=1 @127.0.0.11 "$2" | grep >/dev/null '^10\.97\.0\.'; }
answers v peer || fail "no answer before the flood"

step "EDNS flood (size 65535) from two sandboxes to an upstream that never answers"
cat >"$WORK/flood.py" <<'PY'
import os, socket, struct, sys, time
n = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
def name(i):
    out = b""
    for label in (b"q%d-%d" % (os.getpid(), i), b"flood", b"example"):
        out += bytes([len(label)]) + label
    return out + b"\0"
for i in range(n):
    header = struct.pack(">HHHHHH", i & 0xffff, 0x0100, 1, 0, 0, 1)
    opt = b"\0" + struct.pack(">HHIH", 41, 65535, 0, 0)
    s.sendto(header + name(i) + struct.pack(">HH", 1, 1) + opt, ("127.0.0.11", 53))
    if i % 100 == 99:
        time.sleep(0.01)
time.sleep(3)
PY
before=$(rss_kb)
for sb in h1 h2; do
  "$CNM" exec "$sb" -- python3 "$WORK/flood.py" 1100 >/dev/null 2>&1 & PIDS+=($!)
done
peak=$before
slowest=0
for _ in $(seq 1 30); do
  r=$(rss_kb); [ "$r" -gt "$peak" ] && peak=$r
  t0=$(date +%s%N)
  answers v peer || fail "sandbox v got no answer during the flood"
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  [ "$ms" -gt "$slowest" ] && slowest=$ms
  sleep 0.1
done
wait "${PIDS[@]}" 2>/dev/null || true
PIDS=()
echo "resolver anonymous RSS: ${before} kB before, ${peak} kB at most during the flood (VmRSS now $(vm_kb) kB); slowest answer to v (through cnm exec and dig): ${slowest} ms"
[ "$peak" -lt 40960 ] || fail "the resolver grew to ${peak} kB during the flood (bound: 40 MB)"
after=$peak
for _ in $(seq 1 16); do
  sleep 0.5
  after=$(rss_kb)
  [ "$after" -lt 20480 ] && break
done
echo "resolver anonymous RSS after the flood: ${after} kB (VmRSS $(vm_kb) kB)"
[ "$after" -lt 20480 ] || fail "the resolver is still ${after} kB 8 s after the flood (bound: 20 MB)"
answers v peer || fail "no answer after the flood"

step "a frozen resolver (SIGSTOP) while an apply waits for its reload: replaced, the apply converges"
old=$(resolver_pid)
kill -STOP "$old"; PIDS+=("$old")
sed 's/^  peer: {}$/  peer: {}\n  late: {}/; s/^endpoints:$/endpoints:\n  late-n: { network: n, sandbox: late }/' "$T" >"$WORK/t2.yaml"
start=$(date +%s%N)
RUST_LOG=cnm=debug expect_rc 0 cnm apply "$WORK/t2.yaml"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "apply with a frozen resolver: ${ms} ms"
[ "$ms" -lt 5000 ] || { cat "$WORK/err" /run/cnm/resolver/log >&2; ps -eo pid,stat,args >&2; fail "the apply took ${ms} ms with a frozen resolver (bound: 5 s)"; }
kill -0 "$old" 2>/dev/null && fail "the frozen resolver $old was not replaced"
[ "$(pgrep -c -f -x "$CNM resolver -v")" = 1 ] || fail "not exactly one resolver"
answers late peer || fail "the new sandbox gets no answer"
answers v peer || fail "an old sandbox gets no answer from the replacement"
converged "$WORK/t2.yaml"

step "SIGSTOP, then SIGKILL while the apply waits: the apply converges"
old=$(resolver_pid)
kill -STOP "$old"
"$CNM" apply "$T" >"$WORK/apply.out" 2>&1 & A=$!
sleep 0.3
kill -KILL "$old"
wait "$A" || { cat "$WORK/apply.out"; fail "the apply failed after its resolver was killed"; }
converged "$T"
answers v peer || fail "no answer after the resolver was killed"

step "port 53 is the workload's: dnsmasq (default configuration) and a TCP listener on :53 next to 127.0.0.11"
"$CNM" exec v -- dnsmasq --keep-in-foreground --pid-file="$WORK/dnsmasq.pid" >"$WORK/dnsmasq.log" 2>&1 & PIDS+=($!)
"$CNM" exec peer -- socat TCP-LISTEN:53,fork,reuseaddr SYSTEM:'echo own-tcp-53' >/dev/null 2>&1 & PIDS+=($!)
sleep 0.5
grep -i "failed to create listening socket" "$WORK/dnsmasq.log" && fail "dnsmasq could not bind: $(cat "$WORK/dnsmasq.log")"
v_ip=$(ip netns exec hostile-v ip -o -4 addr show eth0 | awk '{print $4}' | cut -d/ -f1)
# dnsmasq answers on the sandbox's address (forwarding to 127.0.0.11,
# the sandbox's resolv.conf), 127.0.0.11 still answers itself.
"$CNM" exec v -- dig +short +time=1 @"$v_ip" peer | grep >/dev/null '^10\.97\.0\.' || fail "the sandbox's own dnsmasq does not answer"
answers v peer || fail "127.0.0.11 does not answer next to dnsmasq"
answers peer v || fail "127.0.0.11 does not answer next to a TCP listener on :53"
peer_ip=$(ip netns exec hostile-peer ip -o -4 addr show eth0 | awk '{print $4}' | cut -d/ -f1)
got=$("$CNM" exec v -- socat -T2 - TCP:"$peer_ip":53,connect-timeout=2 </dev/null 2>/dev/null || true)
[ "$got" = own-tcp-53 ] || fail "the TCP listener on peer's :53 did not answer: '$got'"
"$CNM" exec peer -- dig +tcp +short +time=1 @127.0.0.11 v | grep >/dev/null '^10\.97\.0\.' || fail "127.0.0.11 over TCP next to a TCP listener on :53"
kill "${PIDS[@]}" 2>/dev/null || true
PIDS=()
expect_rc 0 cnm destroy "$T"
echo PASS
