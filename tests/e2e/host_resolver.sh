#!/usr/bin/env bash
# With the embedded resolver off (hosts-file mode), sandboxes without dns:
# get the host's nameservers minus loopback ones; on
# a host whose resolv.conf names only systemd-resolved's stub 127.0.0.53,
# the real upstreams from /run/systemd/resolve/resolv.conf, as Docker does.
# /etc/resolv.conf is replaced by a bind mount in this private host only.
source "$(dirname "$0")/lib.sh"
T="$WORK/quickstart.yaml"
sed 's/^name: quick$/name: quick\ndns: { embedded: false }/' "$EXAMPLES/quickstart.yaml" >"$T"
grep -q '^dns: { embedded: false }$' "$T" || fail "could not turn the resolver off in $T"

step "the host's resolv.conf names only the systemd stub"
printf 'nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch corp.example\n' >"$WORK/stub"
mount --bind "$WORK/stub" /etc/resolv.conf
mkdir -p /run/systemd/resolve
printf 'nameserver 192.0.2.53\nnameserver 198.51.100.53\nsearch corp.example\n' >/run/systemd/resolve/resolv.conf
expect_rc 0 "$CNM" apply "$T"
converged "$T"
conf=$(cat /etc/netns/quick-alpha/resolv.conf)
grep -q '^nameserver 192.0.2.53$' <<<"$conf" && grep -q '^nameserver 198.51.100.53$' <<<"$conf" \
  || fail "the sandbox did not get systemd-resolved's upstreams: $conf"
grep -q '127.0.0.53' <<<"$conf" && fail "the sandbox got the loopback stub: $conf"
grep -q '^search corp.example$' <<<"$conf" || fail "the search list was lost: $conf"

step "without systemd's list, a stub-only host gives no nameserver (none reachable)"
rm /run/systemd/resolve/resolv.conf
expect_rc 0 "$CNM" apply "$T"
conf=$(cat /etc/netns/quick-alpha/resolv.conf)
grep -q '^nameserver' <<<"$conf" && fail "a nameserver the sandbox cannot reach was written: $conf"

step "an ordinary host resolver is used as it is"
printf 'nameserver 203.0.113.53\n' >"$WORK/stub"
expect_rc 0 "$CNM" apply "$T"
grep -q '^nameserver 203.0.113.53$' /etc/netns/quick-alpha/resolv.conf || fail "the host's nameserver was not used"
expect_rc 0 "$CNM" destroy "$T"
echo PASS
