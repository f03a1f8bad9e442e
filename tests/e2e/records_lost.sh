# Records lost, nothing lost: with every record of cnm's deleted while the
# resolver runs, apply converges (the running resolver is recognised as
# cnm's by its executable, command line and sockets, and replaced), there
# is never more than one resolver, names resolve, and the destroy of the
# last topology stops it.
source "$(dirname "$0")/lib.sh"
Q="$EXAMPLES/quickstart.yaml"
resolvers() { pgrep -f -x "$CNM resolver -v" | wc -l; }
resolves() { "$CNM" exec alpha -- dig +short +time=1 +tries=2 @127.0.0.11 beta | grep >/dev/null '^10\.88\.0\.'; }

step "apply, then every record deleted under the running resolver"
expect_rc 0 cnm apply "$Q"
[ "$(resolvers)" = 1 ] || fail "expected one resolver, found $(resolvers)"
resolves || fail "names do not resolve after the first apply"
old=$(pgrep -f -x "$CNM resolver -v")
rm -rf /run/cnm/* /var/lib/cnm/*

step "a look-alike (named cnm, command line 'resolver', a socket on 127.0.0.11; not cnm's binary) is left alone"
printf 'use IO::Socket::INET;\nmy $s = IO::Socket::INET->new(LocalAddr => "127.0.0.11", LocalPort => 5399, Proto => "udp") or die;\nsleep 600;\n' >"$WORK/resolver"
(cd "$WORK" && exec -a "$WORK/cnm" perl resolver) & LOOK=$!
sleep 0.3
tr '\0' ' ' </proc/$LOOK/cmdline | grep >/dev/null "^$WORK/cnm resolver" || fail "look-alike: $(tr '\0' ' ' </proc/$LOOK/cmdline)"
trap 'kill $LOOK 2>/dev/null || true; rm -rf "$WORK"' EXIT

step "apply converges with one resolver, which serves the names"
expect_rc 0 cnm apply "$Q"
converged "$Q"
[ "$(resolvers)" = 1 ] || fail "expected one resolver, found $(resolvers)"
kill -0 "$old" 2>/dev/null && fail "the unrecorded resolver $old still runs"
resolves || fail "names do not resolve after the records were lost"
reach alpha beta
kill -0 "$LOOK" || fail "a process that only looks like a resolver was stopped"

step "records lost again: destroy of the last topology stops the resolver"
rm -rf /run/cnm/* /var/lib/cnm/*
expect_rc 0 cnm destroy "$Q"
for _ in $(seq 1 50); do [ "$(resolvers)" = 0 ] && break; sleep 0.1; done
[ "$(resolvers)" = 0 ] || fail "the resolver outlived the destroy of the last topology"
[ -z "$(ip netns list)" ] || fail "namespaces left: $(ip netns list)"
echo PASS
