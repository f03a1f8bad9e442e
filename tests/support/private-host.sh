#!/usr/bin/env bash
# Run a command on a private "host": its own network and mount namespaces,
# with tmpfs over every directory cnm writes (/run/netns, /etc/netns, and
# its records in /run/cnm and /var/lib/cnm, Docker's plugin directories and
# /run/systemd).
# A pid namespace of its own: every process started there (the resolver
# that apply starts) ends with it. Nothing reaches the real host.
#   tests/support/private-host.sh CMD [ARGS...]
set -euo pipefail
mkdir -p /run/netns /run/cnm /etc/netns /var/lib/cnm /run/docker /etc/docker /usr/lib/docker /run/systemd
exec unshare --net --mount --propagation private --pid --fork --mount-proc -- bash -c '
  set -e
  for d in /run/netns /run/cnm /etc/netns /var/lib/cnm /run/docker /etc/docker /usr/lib/docker /run/systemd; do mount -t tmpfs tmpfs "$d"; done
  ip link set lo up
  exec "$@"' private-host "$@"
