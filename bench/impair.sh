#!/usr/bin/env bash
# impair.sh -- what link impairment (vsw impair, dataplane/impair/) costs, in one run:
#   A/B   the forwarding path with no impairment set, main's build (row "main") next to this
#         checkout's (row "this"): iperf3 TCP (default offloads: 64 KB segments) and iperf3
#         UDP 64-byte datagrams (-b 0: forwarding kpps), REPS reps, rows alternating.
#   delay this checkout with `vsw impair set C2 --delay 10ms` (C1 -> C2 delayed, ACKs not):
#         iperf3 TCP for DELAY_T s, next to the bandwidth-delay product's limit (the receive
#         window over the RTT: net.ipv4.tcp_rmem max with tcp_adv_win_scale, recorded).
# Each row: a vsw daemon in namespace vbim-ROW-h (entered with nsenter), two containers
# vbim-ROW-1 -> vbim-ROW-2 (IPv6 off). Nothing is added to the machine's own namespace.
# Timed runs take the bench lock (lib.sh timed), so they never overlap another benchmark.
#
# Usage: bench/impair.sh [run|cleanup]   (root)
#   env: MAIN=DIR a built checkout of main (default: /tmp/vsw-impair-bench/main, made with git archive
#        main + npm ci when missing), T=5 s per run, REPS=3, DELAY_T=10, WORKERS=2,
#        RESULTS=bench/results
# Output: bench/results/impair-<stamp>/ (raw.tsv, every iperf3 JSON, summary.txt) and the
# summary on stdout (medians).
set -euo pipefail
SELF=$(readlink -f "$0")
BENCH=$(dirname "$SELF")
REPO=$(cd "$BENCH/.." && pwd)
THIS=$REPO
T=${T:-5}
REPS=${REPS:-3}
DELAY_T=${DELAY_T:-10}
WORKERS=${WORKERS:-2}
LOCK=${LOCK:-/tmp/vsw-bench.lock}
BASE=${BASE:-/tmp/vsw-impair-bench}
RUN=$BASE/run
RESULTS=${RESULTS:-$REPO/bench/results}
MAIN=${MAIN:-$BASE/main}
# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh"
ROWS="main this"
NSS="vbim-main-1 vbim-main-2 vbim-main-h vbim-this-1 vbim-this-2 vbim-this-h"

cleanup(){
  local row
  for row in $ROWS; do
    [ -S "$RUN/$row.sock" ] && CLI=$(cli_of "$row") stop_daemon "$RUN/${row}d.pid" "$RUN/$row.sock" "vbim-$row-1" "vbim-$row-2"
  done
  kill_pidfiles "$RUN"/srv-*.pid
  # shellcheck disable=SC2086
  ns_cleanup $NSS
  rm -rf "$RUN"
}
cli_of(){ [ "$1" = main ] && echo "$MAIN/dist/control/cli.js" || echo "$THIS/dist/control/cli.js"; }
vsw_row(){ local row=$1; shift; timeout 20 node "$(cli_of "$row")" --socket "$RUN/$row.sock" "$@"; }

build_main(){
  [ -f "$MAIN/dist/control/cli.js" ] && [ -f "$MAIN/build/Release/vswio.node" ] && return 0
  log "building main in $MAIN (git archive main + npm ci)"
  rm -rf "$MAIN" && mkdir -p "$MAIN"
  git -C "$REPO" archive main | tar -x -C "$MAIN"
  (cd "$MAIN" && npm ci >"$BASE/main-build.log" 2>&1) || { log "main build failed: $(tail -5 "$BASE/main-build.log")"; return 1; }
}

up_row(){ local row=$1 i
  ns_init "vbim-$row-h"
  CLI=$(cli_of "$row") REPO=$([ "$row" = main ] && echo "$MAIN" || echo "$THIS") \
    start_daemon "vbim-$row-h" "$RUN/$row.sock" "$row" --default-subnet 10.89.0.0/24
  for i in 1 2; do
    vsw_row "$row" run -d --name "vbim-$row-$i" -- sleep infinity >>"$RES/cli.log" 2>&1
    nsx "vbim-$row-$i" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  done
  nsx "vbim-$row-2" iperf3 -s -D --pidfile "$RUN/srv-iperf-$row.pid" >/dev/null 2>&1
  nsx "vbim-$row-1" ping -c 3 -i 0.2 -W 1 10.89.0.3 >/dev/null
}

m_tcp(){ local row=$1 r=$2 f=$RES/$1.tcp.$2.json
  timed "$f" - timeout $((T + 20)) ip netns exec "vbim-$row-1" iperf3 -c 10.89.0.3 -t "$T" -O 1 --connect-timeout 3000 -J
  rec "$row" tcp_gbps "$r" "$(jq '.end.sum_received.bits_per_second/1e9' "$f" 2>/dev/null || echo 0)"; }
m_udp(){ local row=$1 r=$2 f=$RES/$1.udp.$2.json
  timed "$f" - timeout $((T + 20)) ip netns exec "vbim-$row-1" iperf3 -c 10.89.0.3 -u -l 64 -b 0 -t "$T" --connect-timeout 3000 -J
  rec "$row" udp_rx_kpps "$r" "$(jq '.end.sum_received.bytes/64/.end.sum_received.seconds/1000' "$f" 2>/dev/null || echo 0)"; }

# m_delay NAME: iperf3 TCP C1 -> C2 over the delayed port, next to its BDP limit: the bytes in
# flight are at most the receive window (tcp_rmem max, of which 1 - 2^-tcp_adv_win_scale is
# window) and at most the sender's buffer (tcp_wmem max, which also holds the kernel's per-skb
# overhead: in flight stays below it); the limit is the smaller over the RTT. A line in delay.txt.
m_delay(){ local name=$1 f=$RES/this.delay10.$1.json rmem wmem scale win lim gbps
  rmem=$(nsx vbim-this-2 sysctl -n net.ipv4.tcp_rmem | awk '{print $3}')
  wmem=$(nsx vbim-this-1 sysctl -n net.ipv4.tcp_wmem | awk '{print $3}')
  scale=$(nsx vbim-this-2 sysctl -n net.ipv4.tcp_adv_win_scale)
  timed "$f" - timeout $((DELAY_T + 20)) ip netns exec vbim-this-1 iperf3 -c 10.89.0.3 -t "$DELAY_T" -O 2 --connect-timeout 3000 -J
  win=$(awk -v m="$rmem" -v s="$scale" 'BEGIN{print (s>0)? m - m/2^s : m/2^(-s)}')
  lim=$(awk -v w="$win" -v b="$wmem" -v t="$rtt" 'BEGIN{x=(w<b)?w:b; printf "%.3f", x*8/(t/1000)/1e9}')
  gbps=$(jq '.end.sum_received.bits_per_second/1e9' "$f" 2>/dev/null || echo 0)
  rec this "delay10_${name}_gbps" 1 "$gbps"
  printf '  %-8s TCP %.3f Gbit/s; rcv window %s B (tcp_rmem max %s, adv_win_scale %s), snd buffer tcp_wmem max %s B: limit %s Gbit/s; max cwnd %s B, retransmits %s\n' \
    "$name" "$gbps" "$win" "$rmem" "$scale" "$wmem" "$lim" "$(jq '.end.streams[0].sender.max_snd_cwnd // "-"' "$f" 2>/dev/null)" "$(jq '.end.sum_sent.retransmits' "$f" 2>/dev/null)" >>"$RES/delay.txt"; }

median(){ sort -g | awk '{a[NR]=$1} END{if(NR==0){print "-"; exit} print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
col(){ awk -F'\t' -v r="$1" -v m="$2" '$1==r && $2==m {print $4}' "$RES/raw.tsv" | median; }

run(){
  [ "$(id -u)" = 0 ] || { echo "bench/impair.sh: needs root" >&2; exit 1; }
  mkdir -p "$BASE" "$RUN"
  RES=$RESULTS/impair-$(date +%Y%m%d-%H%M%S); mkdir -p "$RES"; : >"$RES/raw.tsv"
  trap cleanup EXIT
  build_main
  (cd "$THIS" && [ -f dist/control/cli.js ] && [ -f build/Release/vswio.node ]) || { log "build this checkout first (npm ci)"; exit 1; }
  local row r order
  for row in $ROWS; do up_row "$row"; done
  for r in $(seq "$REPS"); do
    order=$ROWS; [ $((r % 2)) = 0 ] && order=$(reversed $ROWS)
    for row in $order; do log "rep $r $row tcp"; m_tcp "$row" "$r"; done
    for row in $order; do log "rep $r $row udp"; m_udp "$row" "$r"; done
  done
  # --delay 10ms on C2's port: C1 -> C2 (data) delayed, ACKs not; the RTT is the delay plus the base.
  vsw_row this impair set vbim-this-2 --delay 10ms >>"$RES/cli.log"
  nsx vbim-this-1 ping -c 5 -i 0.2 10.89.0.3 >"$RES/this.delay10.ping.txt"
  local rtt; rtt=$(sed -n 's/.*= [0-9.]*\/\([0-9.]*\)\/.*/\1/p' "$RES/this.delay10.ping.txt")
  m_delay default
  # The same with the sender's send buffer raised to the receiver's (per-namespace sysctl, C1 only).
  nsx vbim-this-1 sysctl -qw net.ipv4.tcp_wmem="4096 16384 $(nsx vbim-this-2 sysctl -n net.ipv4.tcp_rmem | awk '{print $3}')"
  m_delay bigwmem
  vsw_row this stats --format json >"$RES/this.delay10.stats.json"
  vsw_row this impair rm vbim-this-2 >>"$RES/cli.log"
  {
    echo "impair bench, $(date -u +%FT%TZ), T=$T s x $REPS reps (medians), workers $WORKERS, $(nproc) cores"
    echo "no impairment set        main        this"
    printf 'TCP Gbit/s            %8.3f    %8.3f\n' "$(col main tcp_gbps)" "$(col this tcp_gbps)"
    printf 'UDP 64 B rx kpps      %8.1f    %8.1f\n' "$(col main udp_rx_kpps)" "$(col this udp_rx_kpps)"
    echo "--delay 10ms on C2's port (this checkout), ping RTT $rtt ms, TCP for $DELAY_T s:"
    cat "$RES/delay.txt"
  } | tee "$RES/summary.txt"
}

case "${1:-run}" in
  run) run ;;
  cleanup) mkdir -p "$BASE"; RES=$BASE; cleanup ;;
  *) echo "usage: bench/impair.sh [run|cleanup]" >&2; exit 2 ;;
esac
