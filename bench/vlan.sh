#!/usr/bin/env bash
# vlan.sh -- what 802.1Q tagging costs vsw: the same path measured tagged and untagged, in one
# run (e2e.sh is the untagged vsw-vs-kernel bench).
#
# The path: container vl-a1 on an access port of VLAN 10 of daemon A -> trunk ta ==veth==
# tb, a trunk of daemon B -> access port of VLAN 10 -> container vl-b1 (10.89.10.2 ->
# 10.89.10.130; MTU 1500, IPv6 off). Both daemons are vsw, each in its own "host" namespace
# (vl-ha, vl-hb), each with --workers $WORKERS.
#   tagged    the trunks carry VLAN 10 tagged: A pushes the tag, B pops it (and back)
#   untagged  the same trunks with --native 10: VLAN 10 crosses the veth untagged
#             (switching modes = `vsw trunk rm` + `vsw trunk add` on both daemons, nothing else)
#   kernel    reference: two Linux bridges joined by a veth, untagged (vl-kh; containers vl-ka,
#             vl-kb, 10.89.11.2 -> 10.89.11.3). The tagged kernel row (bridge vlan_filtering)
#             cannot be built here: this kernel has no CONFIG_BRIDGE_VLAN_FILTERING (it depends
#             on VLAN_8021Q, which is not set either); the script says so in the summary when
#             `ip link add type bridge vlan_filtering 1` is refused.
# Every repetition measures the rows back to back, rotating which goes first.
#
# Tests (methods of e2e.sh / ../shared/anchors/peers.sh), each run timed under the bench lock
# (lib.sh: timed):
#   tcp_def   iperf3 TCP, default offloads (64 KB segments: few frames, each tagged once)
#   tcp_off   iperf3 TCP, `ethtool -K eth0 tx off tso off gso off` in both containers (MTU-size frames)
#   udp       iperf3 -u -l 64 -b 0: received kpps (the per-frame cost shows here)
#   ping      200 pings at 10 ms: avg ms
# Each vsw run also records both daemons' CPU (utime+stime, all threads, / wall, in cores), so
# the cost per frame can be compared when throughput is bound elsewhere.
#
# Usage: bench/vlan.sh [run|cleanup]     (root)
#   env: T=5 seconds per run, REPS=3 (medians), TESTS="tcp_def tcp_off udp ping",
#        ROWS="untagged tagged kernel", WORKERS=2, RESULTS=bench/results, LOCK=/tmp/vsw-bench.lock
#        (a short check: T=1 REPS=1 bash bench/vlan.sh)
# Output: a table on stdout (bench/report/vlan.ts); bench/results/vlan-<stamp>/ holds raw.tsv
# (row, test, rep, value, cpu), every tool output, both daemons' logs, notes.txt and summary.txt.
set -euo pipefail
SELF=$(readlink -f "$0")
BENCH=$(dirname "$SELF")
REPO=$(cd "$BENCH/.." && pwd)
T=${T:-5}
REPS=${REPS:-3}
TESTS=${TESTS:-"tcp_def tcp_off udp ping"}
ROWS=${ROWS:-"untagged tagged kernel"}
WORKERS=${WORKERS:-2}
LOCK=${LOCK:-/tmp/vsw-bench.lock}
BASE=${BASE:-/tmp/vsw-vlan-bench}
RUN=$BASE/run
RESULTS=${RESULTS:-$REPO/bench/results}
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh"
SOCKA=$RUN/a.sock
SOCKB=$RUN/b.sock
IPA=10.89.10.2
IPB=10.89.10.130
KIPA=10.89.11.2
KIPB=10.89.11.3
NSS="vl-ha vl-hb vl-a1 vl-b1 vl-kh vl-ka vl-kb"   # every namespace this script may create
PIDA=; PIDB=

vswa(){ vsw_at "$SOCKA" "$@"; }
vswb(){ vsw_at "$SOCKB" "$@"; }

cleanup(){ # only what this script made: its processes, its vl-* namespaces, their /etc/netns files
  if [ -d "$RUN" ]; then
    kill_pidfiles "$RUN"/srv-*.pid
    stop_daemon "$RUN/ad.pid" "$SOCKA" vl-a1
    stop_daemon "$RUN/bd.pid" "$SOCKB" vl-b1
  fi
  # shellcheck disable=SC2086
  ns_cleanup $NSS
  rm -rf "$RUN"
}

up_vsw(){
  local n
  ns_init vl-ha && ns_init vl-hb || return 1
  ip link add ta netns vl-ha type veth peer name tb netns vl-hb || return 1
  start_daemon vl-ha "$SOCKA" a --default-subnet 10.89.21.0/24 || return 1; PIDA=$DAEMON_PID
  start_daemon vl-hb "$SOCKB" b --default-subnet 10.89.21.0/24 || return 1; PIDB=$DAEMON_PID
  vswa network create --vlan 10 --subnet 10.89.10.0/24 --ip-range 10.89.10.0/25 v10 >/dev/null &&
  vswb network create --vlan 10 --subnet 10.89.10.0/24 --gateway 10.89.10.129 --ip-range 10.89.10.128/25 v10 >/dev/null &&
  vswa run -d --name vl-a1 --network v10 --ip "$IPA" -- sleep infinity >/dev/null &&
  vswb run -d --name vl-b1 --network v10 --ip "$IPB" -- sleep infinity >/dev/null || return 1
  for n in vl-a1 vl-b1; do nsx "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 || return 1; done
  nsx vl-b1 iperf3 -s -D -B "$IPB" --pidfile "$RUN/srv-vsw.pid" >/dev/null 2>&1 || return 1
  mode tagged
}

# mode tagged|untagged: the trunks carry VLAN 10 tagged, or as their native VLAN.
mode(){
  local extra=() i; if [ "$1" = untagged ]; then extra=(--native 10); fi
  # the trunks may not exist yet (first call): removing them is then a no-op
  vswa trunk rm ta >/dev/null 2>&1 || true; vswb trunk rm tb >/dev/null 2>&1 || true
  vswa trunk add ta "${extra[@]}" >/dev/null && vswb trunk add tb "${extra[@]}" >/dev/null || return 1
  for i in $(seq 50); do nsx vl-a1 ping -c 1 -W 1 "$IPB" >/dev/null 2>&1 && return 0; sleep 0.2; done
  log "mode $1: $IPB unreachable"; return 1
}

up_kernel(){
  local l i
  ns_init vl-kh && ns_init vl-ka && ns_init vl-kb || return 1
  if nsx vl-kh ip link add kbv type bridge vlan_filtering 1 2>/dev/null; then
    nsx vl-kh ip link del kbv || return 1; KERNEL_VLAN="available (not used by this row)"
  else
    KERNEL_VLAN="refused by this kernel (no CONFIG_BRIDGE_VLAN_FILTERING): no tagged kernel row"
  fi
  # Two bridges joined by a veth, as the vsw path has two switches joined by a trunk.
  nsx vl-kh ip link add kb1 type bridge && nsx vl-kh ip link add kb2 type bridge &&
  nsx vl-kh ip link add kl1 type veth peer name kl2 &&
  nsx vl-kh ip link set kl1 master kb1 && nsx vl-kh ip link set kl2 master kb2 &&
  ip link add kpa netns vl-kh type veth peer name eth0 netns vl-ka &&
  ip link add kpb netns vl-kh type veth peer name eth0 netns vl-kb &&
  nsx vl-kh ip link set kpa master kb1 && nsx vl-kh ip link set kpb master kb2 || return 1
  for l in kb1 kb2 kl1 kl2 kpa kpb; do nsx vl-kh ip link set "$l" up || return 1; done
  nsx vl-ka ip addr add "$KIPA/24" dev eth0 && nsx vl-ka ip link set eth0 up &&
  nsx vl-kb ip addr add "$KIPB/24" dev eth0 && nsx vl-kb ip link set eth0 up || return 1
  nsx vl-kb iperf3 -s -D -B "$KIPB" --pidfile "$RUN/srv-kernel.pid" >/dev/null 2>&1 || return 1
  for i in $(seq 50); do nsx vl-ka ping -c 1 -W 1 "$KIPB" >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}

src_of(){ [ "$1" = kernel ] && echo vl-ka || echo vl-a1; }
dst_of(){ [ "$1" = kernel ] && echo "$KIPB" || echo "$IPB"; }
dst_ns(){ [ "$1" = kernel ] && echo vl-kb || echo vl-b1; }

offloads(){ # offloads on|off ROW
  local n; for n in "$(src_of "$2")" "$(dst_ns "$2")"; do
    nsx "$n" ethtool -K eth0 tx "$1" tso "$1" gso "$1" >/dev/null 2>&1 || note "$2" "ethtool -K eth0 tx $1 in $n failed"
  done; }

# measure ROW TEST REP: one timed run -> VALUE (the figure, or nan) and CPU (both daemons'
# cores; nan for the kernel row)
measure(){
  local row=$1 test=$2 rep=$3 f="$RES/$1.$2.$3" src dst pids=- out
  src=$(src_of "$row"); dst=$(dst_of "$row")
  VALUE=nan; CPU=nan
  if [ "$row" != kernel ]; then mode "$row" >/dev/null || return 0; pids=$PIDA,$PIDB; fi
  case $test in tcp_off) offloads off "$row";; *) offloads on "$row";; esac
  case $test in
    tcp_def|tcp_off)
      out=$f.json; timed "$out" "$pids" timeout $((T + 20)) ip netns exec "$src" iperf3 -c "$dst" -t "$T" -O 1 --connect-timeout 3000 -J
      VALUE=$(jq '.end.sum_received.bits_per_second / 1e9' "$out" 2>/dev/null) || VALUE=;;   # no JSON: no figure
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

run(){
  [ "$(id -u)" = 0 ] || { echo "vlan.sh: needs root" >&2; exit 1; }
  mkdir -p "$BASE"
  ensure_pkgs iperf3:iperf3 jq:jq ethtool:ethtool bc:bc ping:iputils-ping nsenter:util-linux flock:util-linux || exit 1
  ensure_build || exit 1
  cleanup; mkdir -p "$RUN"
  local stamp; stamp=$(date +%Y%m%d-%H%M%S)
  RES=$RESULTS/vlan-$stamp; mkdir -p "$RES"; : >"$RES/notes.txt"
  trap 'cleanup' EXIT; trap 'exit 130' INT TERM
  KERNEL_VLAN="not tried"
  case " $ROWS " in *" kernel "*) up_kernel || { log "kernel topology failed"; exit 1; };; esac
  case " $ROWS " in *" tagged "*|*" untagged "*) up_vsw || { log "vsw topology failed"; exit 1; };; esac
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
  { echo "vsw VLAN bench $(date -u +%FT%TZ): T=$T s, REPS=$REPS, WORKERS=$WORKERS, kernel $(uname -r), $(nproc) CPUs"
    node "$SUMMARY_JS" vlan "$RES" "$KERNEL_VLAN"; } | tee "$RES/summary.txt"
}

case "${1:-run}" in
  run) run;;
  cleanup) cleanup;;
  *) echo "usage: $0 [run|cleanup]" >&2; exit 2;;
esac
