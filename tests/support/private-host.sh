#!/usr/bin/env bash
# Run a command on a private "host": its own network and mount namespaces,
# with tmpfs over every directory cnm writes (/run/netns, /etc/netns, and
# its records in /run/cnm and /var/lib/cnm, Docker's plugin directories and
# /run/systemd).
# A pid namespace of its own: every process started there (the resolver
# that apply starts) ends with it. Nothing reaches the real host.
#   tests/support/private-host.sh CMD [ARGS...]
set -euo pipefail
# What cnm and the tests need beyond cargo, said in one line when missing.
if [ "$(id -u)" != 0 ]; then
  echo "private-host.sh: run as root (it makes network and mount namespaces)" >&2; exit 1
fi
missing=()
for pair in unshare:util-linux ip:iproute2 nft:nftables ping:iputils-ping; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "private-host.sh: missing packages: ${missing[*]} (Debian: apt-get install -y ${missing[*]})" >&2; exit 1
fi
mkdir -p /run/netns /run/cnm /etc/netns /var/lib/cnm /run/docker /etc/docker /usr/lib/docker /run/systemd /var/lib/cni /etc/cni
exec unshare --net --mount --propagation private --pid --fork --mount-proc -- bash -c '
  set -e
  for d in /run/netns /run/cnm /etc/netns /var/lib/cnm /run/docker /etc/docker /usr/lib/docker /run/systemd /var/lib/cni /etc/cni; do mount -t tmpfs tmpfs "$d"; done
  ip link set lo up
  exec "$@"' private-host "$@"
