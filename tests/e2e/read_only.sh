# Read-only commands (validate, plan, show, status, graph, schema) create,
# change and delete no file or directory of cnm's, whether they succeed or
# fail; destroy --topology of a name that is not applied exits 1 and
# creates nothing, not even the lock (SPEC §5).
source "$(dirname "$0")/lib.sh"

# Every file and directory cnm keeps or writes: path, type, mode, size,
# modification time (a directory's changes when a name comes or goes in
# it, even a temporary one), and each file's content.
state() {
  find /run/cnm /var/lib/cnm /etc/netns /run/netns -printf '%p %y %m %s %T@\n' 2>/dev/null | sort
  find /run/cnm /var/lib/cnm /etc/netns -type f 2>/dev/null | sort | while read -r f; do
    echo "$f $(md5sum <"$f" | cut -c1-32)"
  done
}

Q="$EXAMPLES/quickstart.yaml"
BAD="$WORK/bad.yaml"
printf 'version: 1\nname: bad\nnetworks:\n  n: { subnet: 10.1.0.0/33 }\n' >"$BAD"
MV="$WORK/mv.yaml"
printf 'version: 1\nname: mv\nnetworks:\n  lan: { driver: macvlan, subnet: 10.77.0.0/24, options: { parent: nosuch0 } }\nsandboxes: { s: {} }\nendpoints:\n  e: { network: lan, sandbox: s }\n' >"$MV"

# Each read-only command with the exit code it must end with ("any" where
# either is right for the state); none may touch a file of cnm's.
read_only_commands() {
  local applied=$1
  expect_rc 0 cnm validate "$Q"
  expect_rc 1 cnm validate "$BAD"
  expect_rc 0 cnm schema
  expect_rc 0 cnm graph "$Q"
  expect_rc 1 cnm plan "$BAD"
  expect_rc 1 cnm plan "$MV"
  expect_rc 1 cnm plan -o json "$MV"
  expect_rc 1 cnm show --topology nosuch
  expect_rc 1 cnm status --topology nosuch
  expect_rc 1 cnm plan --topology nosuch
  expect_rc 1 cnm graph --topology nosuch
  expect_rc 0 cnm plan "$Q" --out "$WORK/saved.json"
  expect_rc 0 cnm show "$WORK/saved.json"
  if [ "$applied" = yes ]; then
    expect_rc 0 cnm plan --detailed-exitcode "$Q"
    expect_rc 0 cnm plan -o json "$Q"
    expect_rc 0 cnm show
    expect_rc 0 cnm show --topology quick
    expect_rc 0 cnm show -o json --topology quick
    expect_rc 0 cnm status
    expect_rc 0 cnm status --topology quick
    expect_rc 0 cnm graph --observed "$Q"
    expect_rc 0 cnm plan --detailed-exitcode --topology quick
    expect_rc 0 cnm graph --topology quick
  else
    expect_rc 2 cnm plan --detailed-exitcode "$Q"
    expect_rc 0 cnm plan -o json "$Q"
    expect_rc 0 cnm show
    expect_rc 1 cnm show --topology quick
    expect_rc 0 cnm status
  fi
}

step "on a fresh host, read-only commands leave cnm's directories as they were"
state >"$WORK/before"
read_only_commands no
state >"$WORK/after"
diff -u "$WORK/before" "$WORK/after" || fail "a read-only command wrote state on a fresh host"

step "destroy --topology of a name never applied: exit 1, nothing created (not even the lock)"
expect_rc 1 cnm destroy --topology typo
grep >/dev/null "typo" "$WORK/err" || fail "destroy typo: $(cat "$WORK/err")"
state >"$WORK/after"
diff -u "$WORK/before" "$WORK/after" || fail "destroy of an unknown topology wrote state"

step "with a topology applied, the same commands change nothing either"
expect_rc 0 cnm apply "$Q"
# The firewall's listing is kept in /run once observed: let one plan keep
# it, so what follows compares like with like.
expect_rc 0 cnm plan "$Q"
state >"$WORK/before"
read_only_commands yes
# A hand change to the firewall (the kept listing is stale now): plan
# must see it and still write nothing.
nft flush table inet cnm-quick
expect_rc 2 cnm plan --detailed-exitcode "$Q"
state >"$WORK/after"
diff -u "$WORK/before" "$WORK/after" || fail "a read-only command wrote state"
expect_rc 1 cnm destroy --topology typo
state >"$WORK/after"
diff -u "$WORK/before" "$WORK/after" || fail "destroy of an unknown topology wrote state"
expect_rc 0 cnm destroy "$Q"
echo PASS
