#!/usr/bin/env bash
# docker.sh -- Docker's own bridge driver against Docker on vsw (issue 10), one run, same
# machine, same image (busybox-static imported), two dockerds side by side:
#   bridge  dkb-h1: dockerd with its default bridge (docker0) and iptables, INSIDE dkb-h1
#           only (its rules, its ip_forward); containers dkb-a, dkb-b on the default network,
#           dkb-a with -p 15201:5201; the client namespace dkb-o1 reaches dkb-h1 over a veth
#           (192.0.2.2 -> 192.0.2.1: Docker DNATs to the container in the kernel)
#   vsw     dkb-h2: a vsw daemon with --docker-plugin and an uplink up0 (192.0.3.1/24) to the
#           client namespace dkb-o2 (192.0.3.2), dockerd with --bridge=none --iptables=false;
#           `docker network create -d vsw` vb (10.66.0.0/24), the same two containers and -p
# Both dockerds are started as test/fixtures/dockerd.ts does (nsenter --net, a private mount
# namespace with a temp dir over /etc/docker, vfs, their own roots under $RUN).
#
# The tools (iperf3, sockperf, ping) are the machine's, run in the containers' network
# namespaces with `nsenter --net=/proc/PID/ns/net` (the image holds busybox only): the same
# binaries for both rows.
#   tcp      iperf3 TCP dkb-b -> dkb-a, default offloads, T seconds: Gbit/s
#   ping     100 pings at 10 ms dkb-b -> dkb-a: avg ms
#   sockperf sockperf ping-pong dkb-b -> dkb-a (UDP, T seconds): avg latency, usec
#   pub      iperf3 TCP from the client namespace to the published port 15201: Gbit/s
#
# Usage: bench/docker.sh [run|cleanup]   (root; each measurement takes the bench lock
#        /tmp/vsw-bench.lock itself (lib.sh timed): never wrap the script in flock)
#   env: T=5 seconds per run, REPS=1, WORKERS=2, RESULTS=bench/results
# Output: a table on stdout; bench/results/docker-<stamp>/ holds raw.tsv, every tool output,
# the daemons' logs, notes.txt and summary.txt.
set -euo pipefail
SELF=$(readlink -f "$0")
BENCH=$(dirname "$SELF")
REPO=$(cd "$BENCH/.." && pwd)
T=${T:-5}
REPS=${REPS:-1}
WORKERS=${WORKERS:-2}
LOCK=${LOCK:-/tmp/vsw-bench.lock}
BASE=${BASE:-/tmp/vsw-docker-bench}
RUN=$BASE/run
RESULTS=${RESULTS:-$REPO/bench/results}
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh"
DOCKER=/usr/bin/docker
NSS="dkb-h1 dkb-o1 dkb-h2 dkb-o2"
SOCK=$RUN/vsw.sock

dk(){ local row=$1; shift; "$DOCKER" -H "unix://$RUN/$row/docker.sock" "$@"; }

# start_dockerd ROW NS ARGS...: dockerd in NS, everything under $RUN/ROW; waits for its socket
start_dockerd(){
  local row=$1 ns=$2 d=$RUN/$1 i; shift 2
  mkdir -p "$d/etc/plugins"
  nsenter --net="/run/netns/$ns" unshare --mount --propagation private -- sh -c \
    "mount --bind $d/etc /etc/docker && exec /usr/sbin/dockerd --ip6tables=false --storage-driver vfs --data-root $d/data \
     --exec-root $d/exec --pidfile $d/docker.pid --cgroup-parent /dkb-$row -H unix://$d/docker.sock $*" >"$RES/dockerd-$row.log" 2>&1 &
  echo $! >"$RUN/dockerd-$row.pid"
  for i in $(seq 150); do dk "$row" version >/dev/null 2>&1 && return 0; sleep 0.2; done
  note "$row" "dockerd did not answer within 30 s: $(tail -3 "$RES/dockerd-$row.log" | tr '\n' ' ')"; return 1
}

image(){ # image ROW: import the busybox-static rootfs as vsw-busybox
  local r=$RUN/rootfs a
  if [ ! -d "$r" ]; then
    mkdir -p "$r/bin" "$r/tmp"; cp /usr/bin/busybox "$r/bin/"
    for a in $("$r/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"; done
  fi
  tar -C "$r" -c . | dk "$1" import - vsw-busybox >/dev/null
}

cpid(){ dk "$1" inspect -f '{{.State.Pid}}' "$2"; }
cip(){ dk "$1" inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$2"; }
inc(){ local row=$1 c=$2; shift 2; nsenter --net="/proc/$(cpid "$row" "$c")/ns/net" "$@"; }   # inc ROW CONTAINER CMD...

cleanup(){ # only what this script made
  local row f
  for row in bridge vsw; do
    kill_pidfiles "$RUN/$row-iperf3.pid" "$RUN/$row-sockperf.pid"
    if [ -S "$RUN/$row/docker.sock" ]; then dk "$row" rm -f dkb-a dkb-b >/dev/null 2>&1 || true; fi
    kill_pidfiles "$RUN/dockerd-$row.pid"
  done
  kill_pidfiles "$RUN/vswd.pid"
  for f in $(grep -l "$RUN" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do     # containerd, shims
    [ "$f" != $$ ] && kill -KILL "$f" 2>/dev/null || true
  done
  # shellcheck disable=SC2086
  ns_cleanup $NSS
  for f in /sys/fs/cgroup/*/dkb-bridge /sys/fs/cgroup/*/dkb-vsw; do
    [ -d "$f" ] || continue
    find "$f" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
    rmdir "$f" 2>/dev/null || true
  done
  rm -rf "$RUN"
}

setup(){
  rm -rf "$RUN"; mkdir -p "$RUN/plugins"
  local ns; for ns in $NSS; do ns_init "$ns"; done
  ip link add o1 netns dkb-h1 type veth peer name eth0 netns dkb-o1
  ip -n dkb-h1 addr add 192.0.2.1/24 dev o1; ip -n dkb-h1 link set o1 up
  ip -n dkb-o1 addr add 192.0.2.2/24 dev eth0; ip -n dkb-o1 link set eth0 up
  ip link add up0 netns dkb-h2 type veth peer name eth0 netns dkb-o2
  ip -n dkb-h2 link set up0 up
  ip -n dkb-o2 addr add 192.0.3.2/24 dev eth0; ip -n dkb-o2 link set eth0 up
  # bridge: Docker's own driver, with iptables inside dkb-h1
  start_dockerd bridge dkb-h1
  image bridge
  # vsw: the plugin, found through a spec file in that dockerd's /etc/docker/plugins
  start_daemon dkb-h2 "$SOCK" vsw --uplink up0 --uplink-ip 192.0.3.1/24 --uplink-gateway 192.0.3.2 \
    --docker-plugin --docker-plugin-dir "$RUN/plugins" --docker-host "unix://$RUN/vsw/docker.sock"
  mkdir -p "$RUN/vsw/etc/plugins"; echo "unix://$RUN/plugins/vsw.sock" >"$RUN/vsw/etc/plugins/vsw.spec"
  start_dockerd vsw dkb-h2 --bridge=none --iptables=false
  image vsw
  dk vsw network create -d vsw --subnet 10.66.0.0/24 vb >/dev/null
  local row net i ns
  for row in bridge vsw; do
    net=bridge; [ "$row" = vsw ] && net=vb
    dk "$row" run -d --name dkb-a --network "$net" -p 15201:5201 vsw-busybox sleep 3600 >/dev/null
    dk "$row" run -d --name dkb-b --network "$net" vsw-busybox sleep 3600 >/dev/null
    # The servers are this script's children (pid files): they go at cleanup with the rest.
    # (nsenter itself in the background: it execs the server, so $! is the server's pid.)
    ns=/proc/$(cpid "$row" dkb-a)/ns/net
    nsenter --net="$ns" iperf3 -s -p 5201 >"$RES/$row-iperf3-server.log" 2>&1 & echo $! >"$RUN/$row-iperf3.pid"
    nsenter --net="$ns" sockperf sr -i "$(cip "$row" dkb-a)" >"$RES/$row-sockperf-server.log" 2>&1 & echo $! >"$RUN/$row-sockperf.pid"
    for i in $(seq 50); do   # both listen (iperf3 TCP 5201, sockperf UDP 11111)
      inc "$row" dkb-a ss -ltnuH 2>/dev/null | grep -q ':5201 ' && inc "$row" dkb-a ss -lunH 2>/dev/null | grep -q ':11111 ' && break
      sleep 0.1
    done
  done
}

measure(){ # measure ROW REP
  local row=$1 r=$2 a out dst=192.0.2.1 client=dkb-o1 cpu=-
  a=$(cip "$row" dkb-a)
  if [ "$row" = vsw ]; then dst=192.0.3.1; client=dkb-o2; cpu=$(cat "$RUN/vswd.pid"); fi
  out=$RES/$row-tcp-$r; timed "$out" "$cpu" inc "$row" dkb-b iperf3 -c "$a" -t "$T" -J
  rec "$row" tcp "$r" "$(jq -r '.end.sum_received.bits_per_second / 1e9' "$out" 2>/dev/null || echo nan)"; rec_cpu "$row" tcp "$r" "$out"
  out=$RES/$row-ping-$r; timed "$out" - inc "$row" dkb-b ping -q -c 100 -i 0.01 "$a"
  rec "$row" ping "$r" "$(sed -n 's#.*= [0-9.]*/\([0-9.]*\)/.*#\1#p' "$out")"
  out=$RES/$row-sockperf-$r; timed "$out" - inc "$row" dkb-b sockperf pp -i "$a" -t "$T"
  rec "$row" sockperf "$r" "$(sed -n 's/.*avg-latency=\([0-9.]*\).*/\1/p' "$out" | tail -1)"
  out=$RES/$row-pub-$r; timed "$out" "$cpu" nsx "$client" iperf3 -c "$dst" -p 15201 -t "$T" -J
  rec "$row" pub "$r" "$(jq -r '.end.sum_received.bits_per_second / 1e9' "$out" 2>/dev/null || echo nan)"; rec_cpu "$row" pub "$r" "$out"
}

main(){
  [ "$(id -u)" = 0 ] || { echo "bench/docker.sh: needs root" >&2; exit 1; }
  for f in /usr/sbin/dockerd "$DOCKER" /usr/bin/busybox; do [ -x "$f" ] || { echo "bench/docker.sh: $f missing (apt-get install docker.io busybox-static)" >&2; exit 1; }; done
  ensure_pkgs iperf3:iperf3 sockperf:sockperf jq:jq
  ensure_build
  RES=$RESULTS/docker-$(date +%Y%m%d-%H%M%S); mkdir -p "$RES"; : >"$RES/raw.tsv"
  trap cleanup EXIT
  setup
  local r
  for r in $(seq "$REPS"); do
    if [ $((r % 2)) = 1 ]; then measure bridge "$r"; measure vsw "$r"; else measure vsw "$r"; measure bridge "$r"; fi
  done
  { echo "docker bench: T=${T}s REPS=$REPS, $(nproc) cores, $(uname -r), $(/usr/sbin/dockerd --version)"
    # medians of the reps (sort the values of each row and test, take the middle one)
    sort -t$'\t' -k1,1 -k2,2 -k4,4g "$RES/raw.tsv" | awk -F'\t' '{ k=$1" "$2; v[k, ++n[k]]=$4 } END {
        split("tcp ping sockperf pub", t, " ")
        u["tcp"]="Gbit/s"; u["ping"]="ms avg"; u["sockperf"]="usec avg"; u["pub"]="Gbit/s"
        printf "%-10s %12s %12s %8s   (medians of %s)\n", "test", "bridge", "vsw", "vsw/br", n["vsw tcp"]
        for (i = 1; i <= 4; i++) { kb = "bridge " t[i]; kv = "vsw " t[i]
          b = v[kb, int((n[kb] + 1) / 2)]; w = v[kv, int((n[kv] + 1) / 2)]
          printf "%-10s %12.3f %12.3f %8.2f   %s\n", t[i], b, w, (b > 0 ? w / b : 0), u[t[i]] } }'
    [ -s "$RES/notes.txt" ] && cat "$RES/notes.txt"; } | tee "$RES/summary.txt"
}

case "${1:-run}" in
  run) main ;;
  cleanup) cleanup ;;
  *) echo "usage: bench/docker.sh [run|cleanup]" >&2; exit 2 ;;
esac
