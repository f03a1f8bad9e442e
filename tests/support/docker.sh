# A real dockerd (Debian's docker.io) inside the test's private host,
# never the machine's: its data and exec roots in a temporary directory,
# its API socket under /run/docker (a tmpfs of the private host). Source
# it from a script that runs under tests/support/private-host.sh.
#
#   docker_up     start dockerd, wait until it answers, import bb:local (a
#                 busybox root filesystem: no registry needed)
#   docker ...    the docker.io client (not another docker on PATH)
#   docker_down   remove the containers, stop dockerd and containerd (and
#                 any shim left), unmount and remove its directories
#
# Facts this relies on (checked on Debian 12, dockerd 20.10): ready in
# about half a second; the vfs storage driver works in a nested mount
# namespace; busybox `sleep` ignores SIGTERM (stop containers with -t 0).

DK_DOCKER_BIN=/usr/bin/docker
docker() { "$DK_DOCKER_BIN" "$@"; }

docker_up() {
  DK_TMP=$(mktemp -d /tmp/cnm-dk.XXXXXX)
  export DK_TMP DOCKER_HOST=unix:///run/docker/dk.sock
  mkdir -p /run/docker/plugins
  /usr/sbin/dockerd --data-root "$DK_TMP/data" --exec-root "$DK_TMP/exec" \
    --pidfile "$DK_TMP/dockerd.pid" -H "$DOCKER_HOST" --storage-driver vfs \
    >"$DK_TMP/dockerd.log" 2>&1 &
  DK_PID=$!
  local _
  for _ in $(seq 300); do
    docker info >/dev/null 2>&1 && break
    kill -0 "$DK_PID" 2>/dev/null || { tail -20 "$DK_TMP/dockerd.log" >&2; return 1; }
    sleep 0.1
  done
  docker info >/dev/null 2>&1 || { tail -20 "$DK_TMP/dockerd.log" >&2; return 1; }
  mkdir -p "$DK_TMP/rootfs/bin" "$DK_TMP/rootfs/etc" "$DK_TMP/rootfs/tmp"
  cp /bin/busybox "$DK_TMP/rootfs/bin/"
  for c in sh sleep cat ip ping nc hostname nslookup echo; do ln -s busybox "$DK_TMP/rootfs/bin/$c"; done
  tar -C "$DK_TMP/rootfs" -c . | docker import - bb:local >/dev/null
}

# Processes whose command line names the temporary directory (containerd,
# shims): found by that exact path, never by name.
dk_pids() {
  local p arr
  for p in /proc/[0-9]*; do
    mapfile -d '' arr <"$p/cmdline" 2>/dev/null || continue
    case "${arr[*]}" in *"$DK_TMP/"*) echo "${p#/proc/}" ;; esac
  done
}

docker_down() {
  [ -n "${DK_TMP:-}" ] || return 0
  local ids pid _ m
  if kill -0 "$DK_PID" 2>/dev/null; then
    ids=$(docker ps -aq 2>/dev/null)
    # shellcheck disable=SC2086
    [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
    kill -TERM "$DK_PID" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$DK_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DK_PID" 2>/dev/null || true
    wait "$DK_PID" 2>/dev/null || true
  fi
  for pid in $(dk_pids); do kill -KILL "$pid" 2>/dev/null || true; done
  for _ in $(seq 30); do [ -z "$(dk_pids)" ] && break; sleep 0.1; done
  for m in $(awk -v d="$DK_TMP" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf "$DK_TMP"
  DK_TMP=
}

# The network namespace of a running container, through its pid.
dk_pid() { docker inspect -f '{{.State.Pid}}' "$1"; }
in_dk() { local c=$1; shift; nsenter -t "$(dk_pid "$c")" -n "$@"; }
