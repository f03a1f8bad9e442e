#!/usr/bin/env bash
# cnm as a CNI plugin under a real libcni client: podman 4 with its CNI
# backend and runc (these machines need both --ulimit flags for runc). podman writes "cniVersion": "0.4.0" conflists. Two
# containers on a cnm network reach each other; `podman rm` leaves nothing
# in cnm's records; the CNI calls podman made are logged and printed.
source "$(dirname "$0")/lib.sh"
command -v podman >/dev/null || fail "podman is not installed (apt-get install podman)"
mkdir -p "$WORK/bin" /etc/cni/net.d "$WORK/rootfs/bin"
# cnm in the CNI path, behind a wrapper that logs each call.
cat >"$WORK/bin/cnm" <<SH
#!/bin/sh
cat >"$WORK/stdin.\$\$"
echo "\$CNI_COMMAND \$(python3 -c 'import json,sys; print(json.load(sys.stdin).get("cniVersion"))' <"$WORK/stdin.\$\$")" >>"$WORK/calls"
exec "$CNM" <"$WORK/stdin.\$\$"
SH
chmod +x "$WORK/bin/cnm"
cat >"$WORK/containers.conf" <<CONF
[network]
cni_plugin_dirs = ["$WORK/bin", "/usr/lib/cni"]
network_config_dir = "/etc/cni/net.d"
CONF
export CONTAINERS_CONF="$WORK/containers.conf"
cat >/etc/cni/net.d/cnmnet.conflist <<'JSON'
{ "cniVersion": "0.4.0", "name": "cnmnet",
  "plugins": [ { "type": "cnm", "network": { "subnet": "10.163.0.0/24" } } ] }
JSON
P=(podman --root "$WORK/pd" --runroot /run/pd --network-backend cni --runtime runc
   --cgroup-manager cgroupfs --events-backend file --cni-config-dir /etc/cni/net.d)
RUN=(run -d --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --cap-add NET_RAW --network cnmnet)

step "a busybox image from a file"
cp /bin/busybox "$WORK/rootfs/bin/"
for c in sh sleep cat ip ping nc; do ln -s busybox "$WORK/rootfs/bin/$c"; done
tar -C "$WORK/rootfs" -c . | "${P[@]}" import - bb:local >/dev/null

step "two containers on the cnm network reach each other"
"${P[@]}" "${RUN[@]}" --name a bb:local sleep 600 >/dev/null
"${P[@]}" "${RUN[@]}" --name b bb:local sleep 600 >/dev/null
b_ip=$("${P[@]}" inspect -f '{{.NetworkSettings.Networks.cnmnet.IPAddress}}' b)
case "$b_ip" in 10.163.0.*) ;; *) fail "b's address from podman: '$b_ip'";; esac
"${P[@]}" exec a ping -c1 -W2 "$b_ip" >/dev/null || fail "a cannot reach b at $b_ip"
"$CNM" show --topology cni-cnmnet >"$WORK/show"
a_id=$("${P[@]}" inspect -f '{{.Id}}' a)
grep -q "container_id: $a_id" "$WORK/show" || { cat "$WORK/show"; fail "show lacks a's container ID"; }

step "podman rm leaves nothing in cnm's records"
"${P[@]}" rm -f -t 0 a b >/dev/null
[ -z "$(find /var/lib/cnm/topologies /run/cnm/topologies -mindepth 1 2>/dev/null)" ] \
  || fail "records left: $(find /var/lib/cnm /run/cnm)"
ip -o link | grep -q 've-' && { ip -o link; fail "host ends left"; }

echo "CNI calls podman made (command, cniVersion):"
sort "$WORK/calls" | uniq -c
grep -q '^ADD 0.4.0' "$WORK/calls" && grep -q '^DEL 0.4.0' "$WORK/calls" || fail "podman's calls were not ADD and DEL at 0.4.0"
echo PASS
