#!/usr/bin/env bash
# cni.sh -- podman with the reference bridge plugin vs podman with vsw-cni, same machine,
# same busybox rootfs, one run: TCP between two containers (iperf3, default offloads) and
# ping round trips. Run it under the bench lock:
#
#   flock /tmp/vsw-bench.lock bash bench/cni.sh [-t SECONDS]     (default -t 5)
#
# Everything happens in a throwaway host namespace `vscb-host` (podman runs under
# `nsenter --net=` of it, with its own containers.conf, root, runroot and tmp dir: issue
# 10's recipe); the vsw daemon runs there with its state and socket in the scratch dir.
# busybox has no iperf3: iperf3 runs from the host's binary inside each container's network
# namespace (`nsenter --net=SANDBOX`), which measures the same path as from inside the
# container. The bridge row: bridge plugin (isGateway, no masquerade) + host-local.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
SECS=5
while getopts "t:" o; do
  case $o in
    t) SECS=$OPTARG ;;
    *) echo "usage: bench/cni.sh [-t SECONDS]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "cni.sh: needs root (namespaces, podman)" >&2; exit 1; }
for c in podman iperf3 nsenter /usr/bin/busybox /usr/lib/cni/bridge /usr/lib/cni/host-local; do
  command -v "$c" >/dev/null 2>&1 || [ -x "$c" ] || { echo "cni.sh: $c is missing (apt-get install podman iperf3 busybox-static containernetworking-plugins)" >&2; exit 1; }
done
CLI=$REPO/dist/control/cli.js
[ -f "$CLI" ] && [ -f "$REPO/dist/control/cni/main.js" ] || { echo "cni.sh: build first (npm run build)" >&2; exit 1; }

HOST=vscb-host
T=$(mktemp -d /tmp/vscb-XXXXXX)
SOCK=$T/vsw.sock
DAEMON_PID=
log(){ echo "[$(date +%T)] $*" >&2; }
pod(){ nsenter --net=/run/netns/$HOST env CONTAINERS_CONF="$T/containers.conf" podman --root "$T/root" --runroot "$T/runroot" \
         --cgroup-manager cgroupfs --events-backend file "$@"; }

cleanup(){
  set +e
  local ids
  ids=$(pod ps -aq 2>/dev/null)
  # shellcheck disable=SC2086
  [ -n "$ids" ] && pod rm -f -t 0 $ids >/dev/null 2>&1
  for p in $(pgrep -f "conmon .*$T" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  for p in ${IPERF_PIDS:-}; do kill -9 "$p" 2>/dev/null; done
  if [ -n "$DAEMON_PID" ]; then kill -INT "$DAEMON_PID" 2>/dev/null; for _ in $(seq 50); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done; kill -9 "$DAEMON_PID" 2>/dev/null; fi
  for s in ${SANDBOXES:-}; do [ -e "$s" ] && ip netns del "$(basename "$s")" 2>/dev/null; done
  ip netns del $HOST 2>/dev/null
  awk -v b="$T" '$5 ~ "^"b {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$T"
}
trap cleanup EXIT

# ---- the host namespace, the daemon, the plugin
ip netns add $HOST
ip -n $HOST link set lo up
ip netns exec $HOST node "$CLI" --socket "$SOCK" daemon --state-dir "$T/state" --workers 2 >"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 150); do node "$CLI" --socket "$SOCK" network ls >/dev/null 2>&1 && break; sleep 0.2; done
node "$CLI" --socket "$SOCK" network ls >/dev/null || { cat "$T/daemon.log" >&2; exit 1; }
mkdir -p "$T/bin" "$T/net.d" "$T/root" "$T/runroot" "$T/tmp" "$T/rootfs/bin" "$T/rootfs/etc" "$T/rootfs/proc" "$T/rootfs/sys" "$T/rootfs/dev" "$T/rootfs/tmp"
node "$CLI" cni install "$T/bin" >/dev/null

# ---- podman's configuration and the rootfs
cp /usr/bin/busybox "$T/rootfs/bin/"
for a in sh sleep ping cat; do ln -s busybox "$T/rootfs/bin/$a"; done
cat >"$T/containers.conf" <<EOF
[network]
network_backend = "cni"
network_config_dir = "$T/net.d"
cni_plugin_dirs = ["$T/bin", "/usr/lib/cni"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$T/events.log"
tmp_dir = "$T/tmp"
EOF
cat >"$T/net.d/brnet.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "brnet", "plugins": [{"type": "bridge", "bridge": "vscbbr0", "isGateway": true, "ipMasq": false,
  "ipam": {"type": "host-local", "dataDir": "$T/host-local", "ranges": [[{"subnet": "10.93.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}}]}
EOF
cat >"$T/net.d/vswnet.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "vswnet", "plugins": [{"type": "vsw", "network": "vswnet", "subnet": "10.94.0.0/24", "socket": "$SOCK"}]}
EOF

# ---- one row: two containers on NET, iperf3 and ping between them
SANDBOXES=
IPERF_PIDS=
row(){
  local row=$1 net=$2 s c ips sb_s sb_c gbps rtt
  s=vscb-$row-s; c=vscb-$row-c
  for n in $s $c; do
    pod run -d --name "$n" --network "$net" --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --rootfs "$T/rootfs" sleep 600 >/dev/null
  done
  sb_s=$(pod inspect "$s" --format '{{.NetworkSettings.SandboxKey}}'); sb_c=$(pod inspect "$c" --format '{{.NetworkSettings.SandboxKey}}')
  SANDBOXES="$SANDBOXES $sb_s $sb_c"
  ips=$(pod inspect "$s" --format "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}")
  nsenter --net="$sb_s" iperf3 -s -1 -B "$ips" >"$T/iperf-s-$row.log" 2>&1 &
  IPERF_PIDS="$IPERF_PIDS $!"
  for _ in $(seq 50); do nsenter --net="$sb_s" ss -ltnH | grep -q ":5201 " && break; sleep 0.1; done
  nsenter --net="$sb_c" ping -c 3 -W 2 -q "$ips" >/dev/null || log "$row: no ping reply before the runs"
  gbps=$(nsenter --net="$sb_c" iperf3 -c "$ips" -t "$SECS" -J | python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))' || echo "-")
  rtt=$(nsenter --net="$sb_c" ping -c 200 -i 0.01 -q "$ips" | sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p')
  printf '%-22s %10s %12s\n' "$row" "$gbps" "${rtt:--}"
  pod rm -f -t 0 "$s" "$c" >/dev/null
}

log "podman bridge vs podman vsw-cni, iperf3 -t $SECS, ping -c 200 -i 0.01"
printf '%-22s %10s %12s\n' "row" "tcp_gbps" "ping_avg_ms"
row bridge-plugin brnet
row vsw-cni vswnet
