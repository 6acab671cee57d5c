#!/usr/bin/env bash
# vxlan.sh -- container -> container across two "hosts" over VXLAN: the kernel's vxlan +
# bridge on both hosts, against vsw on both hosts, in one run (issue #12), plus vsw's own
# non-overlay figures for the same tests.
#
# The underlay: a kernel bridge in vx-u; every host namespace has one address on a veth to it
# (MTU 1500, so the overlay MTU is 1450 everywhere).
#   vsw     vx-ha (192.168.88.1) and vx-hb (.2), a vsw daemon each, network ov = --vxlan 100
#           with each other as peer; containers vx-a1 10.88.0.2 -> vx-b1 10.88.0.66
#   kernel  vx-ka (.11) and vx-kb (.12): `ip link add vx0 type vxlan id 200 dstport 4789
#           local IP dev ul` + `bridge fdb append 00:00:00:00:00:00 dev vx0 dst PEER` + a bridge;
#           containers vx-kc1 10.88.1.2 -> vx-kc2 10.88.1.3 (MTU 1450)
#   flat    vsw without an overlay: two containers on one daemon's default network (vx-ha),
#           vx-f1 -> vx-f2 (the reference for the "UDP and ping within 1.5x" bar)
# Every repetition measures the rows back to back, rotating which goes first.
#
# Tests (as in vlan.sh / e2e.sh), each run timed under the bench lock (lib.sh: timed):
#   tcp_def   iperf3 TCP, default offloads (64 KB segments, cut to 1450 by the sender's switch)
#   tcp_off   iperf3 TCP, `ethtool -K eth0 tx off tso off gso off` in both containers
#   udp       iperf3 -u -l 64 -b 0: received kpps
#   ping      200 pings at 10 ms: avg ms
#
# Usage: bench/vxlan.sh [run|cleanup]     (root; every timed run and the micro-benchmark take
#        the bench lock /tmp/vsw-bench.lock themselves, so never wrap the script in flock)
#   env: T=5 seconds per run, REPS=3 (medians), TESTS="tcp_def tcp_off udp ping",
#        ROWS="vsw kernel flat", WORKERS=2, RESULTS=bench/results, MICRO=1 (also run
#        dist/bench/micro-vxlan.js)       (a short check: T=1 REPS=1 bash bench/vxlan.sh)
# Output: a table on stdout (medians, vsw/kernel ratio); bench/results/vxlan-<stamp>/ holds
# raw.tsv (row, test, rep, value, cpu), every tool output, the daemons' logs, notes.txt and
# summary.txt.
set -euo pipefail
SELF=$(readlink -f "$0")
BENCH=$(dirname "$SELF")
REPO=$(cd "$BENCH/.." && pwd)
T=${T:-5}
REPS=${REPS:-3}
TESTS=${TESTS:-"tcp_def tcp_off udp ping"}
ROWS=${ROWS:-"vsw kernel flat"}
WORKERS=${WORKERS:-2}
MICRO=${MICRO:-1}
LOCK=${LOCK:-/tmp/vsw-bench.lock}
BASE=${BASE:-/tmp/vsw-vxlan-bench}
RUN=$BASE/run
RESULTS=${RESULTS:-$REPO/bench/results}
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh"
SOCKA=$RUN/a.sock
SOCKB=$RUN/b.sock
IPA=10.88.0.2
IPB=10.88.0.66
KIPA=10.88.1.2
KIPB=10.88.1.3
NSS="vx-u vx-ha vx-hb vx-a1 vx-b1 vx-ka vx-kb vx-kc1 vx-kc2 vx-f1 vx-f2"   # every namespace this script may create
PIDA=; PIDB=; FIPB=

vswa(){ vsw_at "$SOCKA" "$@"; }
vswb(){ vsw_at "$SOCKB" "$@"; }

cleanup(){ # only what this script made: its processes, its vx-* namespaces, their /etc/netns files
  if [ -d "$RUN" ]; then
    kill_pidfiles "$RUN"/srv-*.pid
    stop_daemon "$RUN/ad.pid" "$SOCKA" vx-a1 vx-f1 vx-f2
    stop_daemon "$RUN/bd.pid" "$SOCKB" vx-b1
  fi
  # shellcheck disable=SC2086
  ns_cleanup $NSS
  rm -rf "$RUN"
}

# underlay HOSTNS PORT IP: HOSTNS gets IP on `ul`, a veth to the underlay bridge
underlay(){
  ip -n vx-u link add "$2" type veth peer name ul netns "$1" &&
  ip -n vx-u link set "$2" master br0 up &&
  ip -n "$1" addr add "$3/24" dev ul && ip -n "$1" link set ul up
}

reach(){ local i; for i in $(seq 50); do nsx "$1" ping -c 1 -W 1 "$2" >/dev/null 2>&1 && return 0; sleep 0.2; done; return 1; }

up_underlay(){
  ns_init vx-u && ip -n vx-u link add br0 type bridge && ip -n vx-u link set br0 up
}

up_vsw(){
  local n
  ns_init vx-ha && ns_init vx-hb || return 1
  underlay vx-ha ua 192.168.88.1 && underlay vx-hb ub 192.168.88.2 || return 1
  start_daemon vx-ha "$SOCKA" a --default-subnet 10.88.21.0/24 || return 1; PIDA=$DAEMON_PID
  start_daemon vx-hb "$SOCKB" b --default-subnet 10.88.22.0/24 || return 1; PIDB=$DAEMON_PID
  vswa network create --vxlan 100 --peer 192.168.88.2 --subnet 10.88.0.0/24 --ip-range 10.88.0.0/26 ov >/dev/null &&
  vswb network create --vxlan 100 --peer 192.168.88.1 --subnet 10.88.0.0/24 --ip-range 10.88.0.64/26 ov >/dev/null &&
  vswa run -d --name vx-a1 --network ov --ip "$IPA" -- sleep infinity >/dev/null &&
  vswb run -d --name vx-b1 --network ov --ip "$IPB" -- sleep infinity >/dev/null || return 1
  for n in vx-a1 vx-b1; do nsx "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 || return 1; done
  nsx vx-b1 iperf3 -s -D -B "$IPB" --pidfile "$RUN/srv-vsw.pid" >/dev/null 2>&1 || return 1
  reach vx-a1 "$IPB"
}

up_flat(){
  vswa run -d --name vx-f1 -- sleep infinity >/dev/null && vswa run -d --name vx-f2 -- sleep infinity >/dev/null || return 1
  FIPB=$(nsx vx-f2 ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1)
  nsx vx-f2 iperf3 -s -D -B "$FIPB" --pidfile "$RUN/srv-flat.pid" >/dev/null 2>&1 || return 1
  reach vx-f1 "$FIPB"
}

# kernel_host HOSTNS PORT IP PEER CONTAINER CIP
kernel_host(){
  ns_init "$1" && underlay "$1" "$2" "$3" || return 1
  ip -n "$1" link add vx0 type vxlan id 200 dstport 4789 local "$3" dev ul &&
  bridge -n "$1" fdb append 00:00:00:00:00:00 dev vx0 dst "$4" &&
  ip -n "$1" link add kbr type bridge && ip -n "$1" link set vx0 master kbr up && ip -n "$1" link set kbr up &&
  ns_init "$5" && ip -n "$1" link add kp mtu 1450 type veth peer name eth0 netns "$5" mtu 1450 &&
  ip -n "$1" link set kp master kbr up &&
  ip -n "$5" addr add "$6/24" dev eth0 && ip -n "$5" link set eth0 up
}

up_kernel(){
  kernel_host vx-ka uka 192.168.88.11 192.168.88.12 vx-kc1 "$KIPA" &&
  kernel_host vx-kb ukb 192.168.88.12 192.168.88.11 vx-kc2 "$KIPB" || return 1
  nsx vx-kc2 iperf3 -s -D -B "$KIPB" --pidfile "$RUN/srv-kernel.pid" >/dev/null 2>&1 || return 1
  reach vx-kc1 "$KIPB"
}

src_of(){ case $1 in kernel) echo vx-kc1;; flat) echo vx-f1;; *) echo vx-a1;; esac; }
dst_of(){ case $1 in kernel) echo "$KIPB";; flat) echo "$FIPB";; *) echo "$IPB";; esac; }
dst_ns(){ case $1 in kernel) echo vx-kc2;; flat) echo vx-f2;; *) echo vx-b1;; esac; }

offloads(){ # offloads on|off ROW
  local n; for n in "$(src_of "$2")" "$(dst_ns "$2")"; do
    nsx "$n" ethtool -K eth0 tx "$1" tso "$1" gso "$1" >/dev/null 2>&1 || note "$2" "ethtool -K eth0 tx $1 in $n failed"
  done; }

measure(){ # measure ROW TEST REP -> VALUE, CPU
  local row=$1 test=$2 rep=$3 f="$RES/$1.$2.$3" src dst pids=- out
  src=$(src_of "$row"); dst=$(dst_of "$row")
  VALUE=nan; CPU=nan
  case $row in vsw) pids=$PIDA,$PIDB;; flat) pids=$PIDA;; esac
  case $test in tcp_off) offloads off "$row";; *) offloads on "$row";; esac
  case $test in
    tcp_def|tcp_off)
      out=$f.json; timed "$out" "$pids" timeout $((T + 20)) ip netns exec "$src" iperf3 -c "$dst" -t "$T" -O 1 --connect-timeout 3000 -J
      VALUE=$(jq '.end.sum_received.bits_per_second / 1e9' "$out" 2>/dev/null) || VALUE=;;
    udp)
      out=$f.json; timed "$out" "$pids" timeout $((T + 20)) ip netns exec "$src" iperf3 -c "$dst" -u -l 64 -b 0 -t "$T" --connect-timeout 3000 -J
      VALUE=$(jq '(.end.sum.packets - .end.sum.lost_packets) / .end.sum.seconds / 1000' "$out" 2>/dev/null) || VALUE=;;
    ping)
      out=$f.txt; timed "$out" "$pids" ip netns exec "$src" ping -n -q -c 200 -i 0.01 "$dst"
      VALUE=$(sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p' "$out");;
  esac
  offloads on "$row"
  VALUE=${VALUE:-nan}
  if [ "$row" != kernel ]; then CPU=$(cpuf "$out" proc_cpu); fi
}

# summary RES: medians per row and test, and vsw / kernel, vsw / flat
summary(){
  awk -F'\t' 'NR > 1 && $4 != "nan" && $4 != "" { v[$2 "\t" $1] = v[$2 "\t" $1] " " $4; c[$2 "\t" $1] = c[$2 "\t" $1] " " $5 }
    function median(s,   a, n, i, j, t) { n = split(s, a, " "); for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
      return n == 0 ? "nan" : (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2) }
    END {
      split("tcp_def tcp_off udp ping", tests, " "); unit["tcp_def"] = "Gbit/s"; unit["tcp_off"] = "Gbit/s"; unit["udp"] = "kpps"; unit["ping"] = "ms avg"
      printf "%-8s %-7s %10s %10s %10s %10s %12s %12s\n", "test", "unit", "vsw", "kernel", "flat", "vsw-cpu", "vsw/kernel", "vsw/flat"
      for (k = 1; k <= 4; k++) { t = tests[k]; a = median(v[t "\tvsw"]); b = median(v[t "\tkernel"]); f = median(v[t "\tflat"]); cpu = median(c[t "\tvsw"])
        printf "%-8s %-7s %10s %10s %10s %10s %12s %12s\n", t, unit[t], a, b, f, cpu,
          (a != "nan" && b != "nan" && b + 0 > 0) ? sprintf("%.2f", a / b) : "-", (a != "nan" && f != "nan" && f + 0 > 0) ? sprintf("%.2f", a / f) : "-" } }' "$1/raw.tsv"
  [ -s "$1/notes.txt" ] && { echo "notes:"; sed 's/^/  /' "$1/notes.txt"; }
  return 0
}

run(){
  [ "$(id -u)" = 0 ] || { echo "vxlan.sh: needs root" >&2; exit 1; }
  mkdir -p "$BASE"
  ensure_pkgs iperf3:iperf3 jq:jq ethtool:ethtool ping:iputils-ping nsenter:util-linux flock:util-linux bridge:iproute2 || exit 1
  ensure_build || exit 1
  cleanup; mkdir -p "$RUN"
  local stamp; stamp=$(date +%Y%m%d-%H%M%S)
  RES=$RESULTS/vxlan-$stamp; mkdir -p "$RES"; : >"$RES/notes.txt"
  trap 'cleanup' EXIT; trap 'exit 130' INT TERM
  up_underlay || { log "underlay failed"; exit 1; }
  case " $ROWS " in *" vsw "*|*" flat "*) up_vsw || { log "vsw topology failed"; exit 1; };; esac
  case " $ROWS " in *" flat "*) up_flat || { log "flat topology failed"; exit 1; };; esac
  case " $ROWS " in *" kernel "*) up_kernel || { log "kernel topology failed"; exit 1; };; esac
  printf 'row\ttest\trep\tvalue\tcpu\n' >"$RES/raw.tsv"
  local rows rep t i n row
  read -ra rows <<<"$ROWS"; n=${#rows[@]}
  for rep in $(seq "$REPS"); do
    for t in $TESTS; do
      for i in $(seq 0 $((n - 1))); do
        row=${rows[$(( (i + rep + ${#t}) % n ))]}
        measure "$row" "$t" "$rep"
        log "rep $rep $t $row: $VALUE $CPU"
        printf '%s\t%s\t%s\t%s\t%s\n' "$row" "$t" "$rep" "$VALUE" "$CPU" >>"$RES/raw.tsv"
      done
    done
  done
  if [ "$MICRO" = 1 ]; then flock "$LOCK" node "$REPO/dist/bench/micro-vxlan.js" --quick >"$RES/micro.txt" 2>&1 || note micro "micro-vxlan failed"; fi
  { echo "vsw VXLAN bench $(date -u +%FT%TZ): T=$T s, REPS=$REPS, WORKERS=$WORKERS, kernel $(uname -r), $(nproc) CPUs"
    summary "$RES"
    if [ -s "$RES/micro.txt" ]; then echo "per-frame cost in the worker loop (bench/micro-vxlan.ts):"; sed 's/^/  /' "$RES/micro.txt"; fi
  } | tee "$RES/summary.txt"
}

case "${1:-run}" in
  run) run;;
  cleanup) cleanup;;
  *) echo "usage: $0 [run|cleanup]" >&2; exit 2;;
esac
