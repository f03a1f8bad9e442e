# Safe as root on a shared host: names that would escape a directory are
# refused, links are never followed, modes do not depend on the umask,
# nothing foreign is taken over (after a crash either), prerequisites are
# checked before the first change, input is bounded, output errors end
# cleanly. Each step would fail on a cnm without the matching defence.
source "$(dirname "$0")/lib.sh"
Q="$EXAMPLES/quickstart.yaml"
VICTIM="$WORK/victim"
mkdir -p "$VICTIM/dir"
echo "precious" >"$VICTIM/file"; chmod 0640 "$VICTIM/file"
echo "keep me" >"$VICTIM/dir/inside"
victim_state() { (cd "$VICTIM" && find . -printf '%m %y %p\n' | sort && cat file dir/inside); }
victim_state >"$WORK/victim-before"
victim_intact() { victim_state | diff -u "$WORK/victim-before" - >&2 || fail "victim changed: $*"; }

step "names that would escape a directory are refused, records intact"
expect_rc 0 cnm apply "$Q"
for bad in "../../$VICTIM" "." ".." "a/b" "../x" "" "x y"; do
  expect_rc 1 cnm destroy --topology "$bad"
  grep >/dev/null "topology name" "$WORK/err" || fail "destroy --topology '$bad': $(cat "$WORK/err")"
  expect_rc 1 cnm show --topology "$bad"
  expect_rc 1 cnm exec --topology "$bad" alpha -- true
done
expect_rc 1 cnm exec ../alpha -- true
victim_intact "after --topology traversal"
converged "$Q"
reach alpha beta

step "records lost: cnm still knows its objects by their marks"
rm -rf /run/cnm/topologies /var/lib/cnm/topologies
converged "$Q"
reach alpha beta
expect_rc 0 cnm apply "$Q"
[ -e /run/cnm/topologies/quick/sandboxes/alpha ] || fail "apply did not record the namespace again"

step "umask 000: every file and directory cnm creates has its fixed mode"
expect_rc 0 cnm destroy "$Q"
( umask 000; "$CNM" apply "$Q" >/dev/null ) || fail "apply under umask 000"
modes() { find "$@" -printf '%m %y %p\n' | sort -k3; }
modes /run/cnm/topologies /var/lib/cnm/topologies >"$WORK/state-modes"
awk '($2 == "d" && $1 != "700") || ($2 == "f" && $1 != "600")' "$WORK/state-modes" | grep . && fail "state modes: $(cat "$WORK/state-modes")"
for root in /run/cnm /var/lib/cnm; do [ "$(stat -c %a $root)" = 700 ] || fail "$root is $(stat -c %a $root)"; done
[ "$(stat -c %a /run/cnm/lock)" = 600 ] || fail "lock mode $(stat -c %a /run/cnm/lock)"
modes /etc/netns/quick-alpha /etc/netns/quick-beta >"$WORK/etc-modes"
awk '($2 == "d" && $1 != "755") || ($2 == "f" && $1 != "644")' "$WORK/etc-modes" | grep . && fail "etc modes: $(cat "$WORK/etc-modes")"
grep -c ' f ' "$WORK/etc-modes" | grep >/dev/null '^4$' || fail "expected 4 files: $(cat "$WORK/etc-modes")"

step "a link planted at a file cnm writes is refused, never followed, never printed"
ln -sf "$VICTIM/file" /etc/netns/quick-alpha/hosts.planted
mv /etc/netns/quick-alpha/hosts.planted /etc/netns/quick-alpha/hosts
expect_rc 1 cnm plan "$Q"
grep >/dev/null "/etc/netns/quick-alpha/hosts is a symbolic link" "$WORK/err" || fail "plan: $(cat "$WORK/err")"
grep >/dev/null precious "$WORK/out" "$WORK/err" && fail "plan printed the link's target"
expect_rc 1 cnm apply "$Q"
expect_rc 0 cnm destroy "$Q"
victim_intact "link at hosts"
[ -L /etc/netns/quick-alpha/hosts ] || fail "destroy removed a link it did not make"
rm /etc/netns/quick-alpha/hosts
expect_rc 0 cnm apply "$Q"
converged "$Q"

step "links planted at temporary names beside the file are never touched"
for n in .hosts.cnm-tmp .hosts.tmp hosts.tmp .resolv.conf.cnm-tmp; do ln -s "$VICTIM/file" "/etc/netns/quick-beta/$n"; done
echo tampered >/etc/netns/quick-beta/hosts
expect_rc 0 cnm apply "$Q"
converged "$Q"
victim_intact "temp links"
rm -f /etc/netns/quick-beta/.hosts.cnm-tmp /etc/netns/quick-beta/.hosts.tmp /etc/netns/quick-beta/hosts.tmp /etc/netns/quick-beta/.resolv.conf.cnm-tmp

step "a link at a record, at the journal, or at /etc/netns/<ns> is an error naming it"
mv /run/cnm/topologies/quick/sandboxes/alpha "$WORK/alpha.rec"
ln -s "$VICTIM/file" /run/cnm/topologies/quick/sandboxes/alpha
expect_rc 1 cnm plan "$Q"
grep >/dev/null "/run/cnm/topologies/quick/sandboxes/alpha is a symbolic link" "$WORK/err" || fail "record link: $(cat "$WORK/err")"
expect_rc 1 cnm destroy "$Q"
victim_intact "link at a record"
rm /run/cnm/topologies/quick/sandboxes/alpha; mv "$WORK/alpha.rec" /run/cnm/topologies/quick/sandboxes/alpha
ln -s "$VICTIM/file" /run/cnm/topologies/quick/journal
ip link del "$(ip -o link | grep -o 've-[0-9a-f]*' | head -1)"
expect_rc 1 cnm apply "$Q"
grep >/dev/null "journal is a symbolic link" "$WORK/err" || fail "journal link: $(cat "$WORK/err")"
victim_intact "link at the journal"
rm /run/cnm/topologies/quick/journal
expect_rc 0 cnm apply "$Q"
expect_rc 0 cnm destroy "$Q"
ln -s "$VICTIM/dir" /etc/netns/quick-alpha
expect_rc 1 cnm plan "$Q"
grep >/dev/null "/etc/netns/quick-alpha is a symbolic link" "$WORK/err" || fail "dir link: $(cat "$WORK/err")"
expect_rc 1 cnm apply "$Q"
victim_intact "link at /etc/netns/<ns>"
rm /etc/netns/quick-alpha
rm -rf /run/cnm/topologies
ln -s "$VICTIM/dir" /run/cnm/topologies
expect_rc 1 cnm plan "$Q"
grep >/dev/null "/run/cnm/topologies is a symbolic link" "$WORK/err" || fail "state dir link: $(cat "$WORK/err")"
victim_intact "link at /run/cnm/topologies"
rm /run/cnm/topologies

step "foreign files in /etc/netns/<ns>/ survive apply and destroy byte for byte"
mkdir -p /etc/netns/quick-alpha
echo "hosts: files" >/etc/netns/quick-alpha/nsswitch.conf
md5sum /etc/netns/quick-alpha/nsswitch.conf >"$WORK/ns-sum"
expect_rc 0 cnm apply "$Q"
expect_rc 0 cnm destroy "$Q"
md5sum -c "$WORK/ns-sum" >/dev/null || fail "foreign nsswitch.conf changed"
[ -z "$(ls /etc/netns/quick-beta 2>/dev/null)" ] || fail "cnm's own directory left behind"
echo "10.0.0.1 mine" >/etc/netns/quick-alpha/hosts
md5sum /etc/netns/quick-alpha/hosts >"$WORK/hosts-sum"
expect_rc 1 cnm plan "$Q"
grep >/dev/null "/etc/netns/quick-alpha/hosts exists and cnm did not write it" "$WORK/err" || fail "foreign hosts: $(cat "$WORK/err")"
expect_rc 1 cnm apply "$Q"
md5sum -c "$WORK/hosts-sum" >/dev/null || fail "foreign hosts changed"
rm -rf /etc/netns/quick-alpha

step "a foreign table named like cnm's is never touched"
nft add table inet cnm-quick
nft add chain inet cnm-quick keep '{ type filter hook forward priority 0; }'
nft add rule inet cnm-quick keep counter accept
nft list table inet cnm-quick >"$WORK/table-before"
snapshot >"$WORK/before"
expect_rc 1 cnm plan "$Q"
grep >/dev/null "inet cnm-quick already exists and cnm did not create it" "$WORK/err" || fail "foreign table: $(cat "$WORK/err")"
expect_rc 1 cnm apply "$Q"
# Nothing was applied: destroying the file finds nothing of its own.
expect_rc 0 cnm destroy "$Q"
snapshot >"$WORK/after"
diff -u "$WORK/before" "$WORK/after" || fail "a refused apply changed the kernel"
nft list table inet cnm-quick | diff -u "$WORK/table-before" - || fail "foreign table changed"
nft delete table inet cnm-quick

step "after crashes, an admin's link named like cnm's survives apply and destroy"
L="$WORK/lab.yaml"
printf 'version: 1\nname: lab\nnetworks:\n  n: { subnet: 10.77.0.0/24, options: { bridge_name: br-lab } }\nsandboxes: { a: {}, b: {} }\nendpoints:\n  a-n: { network: n, sandbox: a }\n  b-n: { network: n, sandbox: b }\n' >"$L"
for i in 1 2 3 4 5 6; do
  "$CNM" apply "$L" >/dev/null 2>&1 & pid=$!
  sleep "0.0$((RANDOM % 10))$((RANDOM % 10))"; kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  ip link del br-lab 2>/dev/null || true
  ip link add br-lab type bridge; ip link set br-lab mtu 1400 alias "the admin's"
  ip -d link show br-lab | sed -E 's/^[0-9]+: //' >"$WORK/admin-before"
  expect_rc 1 cnm apply "$L"
  grep >/dev/null "br-lab already exists and belongs to something else" "$WORK/err" || fail "admin link: $(cat "$WORK/err")"
  expect_rc 0 cnm destroy "$L"
  ip -d link show br-lab | sed -E 's/^[0-9]+: //' | diff -u "$WORK/admin-before" - || fail "the admin's br-lab changed"
  ip link del br-lab
done
ip -o link | grep -E ': cnt[0-9a-f]+' && fail "temporary links leaked"
expect_rc 0 cnm apply "$L"
converged "$L"
reach a b
expect_rc 0 cnm destroy "$L"

step "icc: false isolates an endpoint added later (real traffic)"
I="$WORK/iso.yaml"
printf 'version: 1\nname: iso\nnetworks:\n  n1: { subnet: 10.61.0.0/24, options: { icc: false } }\nsandboxes: { a1: {}, a2: {}, a3: {} }\nendpoints:\n  a1-n1: { network: n1, sandbox: a1 }\n  a2-n1: { network: n1, sandbox: a2 }\n' >"$I"
expect_rc 0 cnm apply "$I"
unreachable a1 a2
printf '  a3-n1: { network: n1, sandbox: a3 }\n' >>"$I"
pending "$I"
grep >/dev/null "icc off on br-iso-n1: no traffic between its 3 endpoints" "$WORK/out" || fail "plan does not change the icc rule: $(cat "$WORK/out")"
expect_rc 0 cnm apply "$I"
converged "$I"
unreachable a3 a1
unreachable a1 a3
reach a3 10.61.0.1
expect_rc 0 cnm destroy "$I"

step "nft missing: refused before any change, with an install hint"
snapshot >"$WORK/before"
expect_rc 1 env PATH=/nonexistent "$CNM" apply "$Q"
grep >/dev/null "install the nftables package" "$WORK/err" || fail "hint: $(cat "$WORK/err")"
expect_rc 1 env PATH=/nonexistent "$CNM" plan "$Q"
snapshot >"$WORK/after"
diff -u "$WORK/before" "$WORK/after" || fail "apply without nft changed the kernel"
expect_rc 0 cnm apply "$Q"
snapshot >"$WORK/before"
expect_rc 1 env PATH=/nonexistent "$CNM" destroy "$Q"
grep >/dev/null "install the nftables package" "$WORK/err" || fail "destroy hint: $(cat "$WORK/err")"
snapshot >"$WORK/after"
diff -u "$WORK/before" "$WORK/after" || fail "destroy without nft changed the kernel"
expect_rc 0 cnm destroy "$Q"

step "a full port range publishes in a bounded number of rules and memory"
F="$WORK/full.yaml"
printf 'version: 1\nname: full\nnetworks:\n  lan: { subnet: 10.97.0.0/24 }\nsandboxes: { a: {} }\nendpoints:\n  e: { network: lan, sandbox: a, ports: ["1-65535:1-65535", "20000-29999:30000-39999/udp"] }\n' >"$F"
/usr/bin/time -f "%M" -o "$WORK/rss" "$CNM" apply "$F" >/dev/null || fail "full range apply"
rss=$(tail -1 "$WORK/rss")
[ "$rss" -lt 102400 ] || fail "apply peaked at $rss KiB"
rules=$(nft list table inet cnm-full | grep -c dnat)
[ "$rules" -le 8 ] || fail "$rules DNAT rules for two ranges"
converged "$F"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
"$CNM" exec a -- socat TCP-LISTEN:45678,fork,reuseaddr SYSTEM:'echo high-port' >/dev/null 2>&1 & PIDS+=($!)
sleep 0.3
got=$(socat -T2 - TCP:127.0.0.1:45678,connect-timeout=1 2>/dev/null || true)
[ "$got" = high-port ] || fail "port 45678 of the range: got '$got'"
expect_rc 0 cnm destroy "$F"

step "a closed pipe ends quietly; a full disk is one line, exit 1, nothing changed"
B="$WORK/many.yaml"
{ printf 'version: 1\nname: many\nnetworks:\n  lan: { subnet: 10.95.0.0/16 }\nsandboxes:\n'
  for i in $(seq 1 300); do printf '  s%s: {}\n' "$i"; done
  printf 'endpoints:\n'
  for i in $(seq 1 300); do printf '  e%s: { network: lan, sandbox: s%s }\n' "$i" "$i"; done; } >"$B"
set +e
"$CNM" plan "$B" 2>"$WORK/err" | head -1 >/dev/null; rc=${PIPESTATUS[0]}
set -e
[ "$rc" = 0 ] || fail "plan | head -1 exited $rc: $(cat "$WORK/err")"
[ ! -s "$WORK/err" ] || fail "plan | head -1 wrote to stderr: $(cat "$WORK/err")"
snapshot >"$WORK/before"
expect_rc 1 sh -c "\"$CNM\" apply \"$B\" >/dev/full"
[ "$(wc -l <"$WORK/err")" -le 2 ] || fail "more than a line: $(cat "$WORK/err")"
grep >/dev/null "cannot write to standard output" "$WORK/err" || fail "full disk: $(cat "$WORK/err")"
grep >/dev/null "panicked" "$WORK/err" && fail "panic"
snapshot >"$WORK/after"
diff -u "$WORK/before" "$WORK/after" || fail "an apply that could not print its plan changed the kernel"

step "bad input: devices, FIFOs and huge files are refused without reading them"
expect_rc 1 cnm validate /dev/zero
grep >/dev/null "not a regular file" "$WORK/err" || fail "/dev/zero: $(cat "$WORK/err")"
mkfifo "$WORK/fifo"
expect_rc 1 timeout 5 "$CNM" validate "$WORK/fifo"
head -c 17000000 /dev/zero >"$WORK/huge.yaml"
expect_rc 1 cnm validate "$WORK/huge.yaml"
grep >/dev/null "larger than 16 MiB" "$WORK/err" || fail "huge: $(cat "$WORK/err")"
echo "PASS"
