#!/usr/bin/env bash
# e2e.sh -- end-to-end benchmark: vsw next to the Linux kernel bridge, in one run.
#
# Every test measures two rows: the kernel ("bridge": a Linux bridge, plus iptables
# MASQUERADE and dnsmasq for the routed tests) and vsw, on topologies of the same shape
# that all exist at once; every repetition measures the rows back to back (alternating
# which goes first), so background load on the machine hits both rows alike. The
# namespaces are all named vb-*; nothing is added to the machine's own namespace.
#
# The test families, one file each (its header says what each test measures and how):
#   bench/l2.sh          tcp_def tcp_off udp ping sockperf   switched TCP/UDP/latency; the L2
#                                                            topology (vb-bh/vb-b1/vb-b2, vb-vh/vb-v1/vb-v2)
#   bench/forwarding.sh  mac1 mac1000                        trafgen frame forwarding, 1 and 1000 source MACs
#   bench/l3.sh          nat_tcp_def nat_tcp_off dns         routed: NAT TCP and DNS, on their own topology
#                                                            and a second vsw daemon (docs/BENCH-L3.md)
#   bench/taps.sh        taps (not in the default TESTS)     what `vsw capture` and live `vsw trace` cost,
#                                                            vsw row only (docs/BENCH-TAPS.md)
#   bench/scale.sh       scale_* mac10000 (--scale)          how it grows: containers, source MACs, workers,
#                                                            NAT flows, DNS names (docs/PERF.md)
# Shared helpers: bench/lib.sh. Tables and charts: bench/summary.ts (built to dist/bench/summary.js).
#
# During each run: the vsw daemon's CPU (utime+stime of the process, all threads, / wall,
# in cores; dnsmasq's for the kernel row of `dns`) and the whole system's busy CPU (cores,
# from /proc/stat).
#
# Usage: bench/e2e.sh [run|cleanup|summary DIR] [--quick] [--scale|--scale-only]
#   (root; `npm run bench` = run, `npm run bench -- --quick` = a first look)
#   --quick       REPS=1, T=2, DNS_T=2 (unless set in the environment): every test once, short
#   --scale       the scale tests too (bench/scale.sh: how it grows; "scaling" chart)
#   --scale-only  only the scale tests
#   env: T=5 seconds per test run, REPS=3 (medians are reported), TESTS="tcp_def tcp_off udp
#        ping sockperf mac1 mac1000 nat_tcp_def nat_tcp_off dns", ROWS="bridge vsw",
#        WORKERS=2 (vsw --workers), PORT_SECURITY=off (the vsw L2 network's; l2.sh), VSW_ARGS
#        (more options of the L2 daemon, e.g. "--fdb-max-per-port 16384"), DNS_T=10 (dns:
#        seconds per run), DNSPERF_OPTS="-c 4 -q 100 -Q 200000 -t 2" (dns, same for both
#        rows), TAPS_CONDS (taps: a subset of "a1 b c d e a2"),
#        PERF=1 (a perf profile of the daemon in every vsw run: perf.TEST.REP.txt),
#        RESULTS=bench/results, LOCK=/tmp/vsw-bench.lock (shared with peers.sh: timed runs
#        never overlap another benchmark's; under `flock $LOCK bash bench/e2e.sh` the run
#        holds it throughout), BUILD=1 forces `npm run build` first.
# Progress: one line per step on stderr (test, row, repetition i of n, time left; lib.sh
# progress_step), the total time at the end.
# Output: a plain table and a markdown table on stdout (taps: its own table after it, also in
# taps.txt / taps.md); bench/results/<stamp>/ holds raw.tsv (row, metric, rep, value),
# notes.txt, conditions.txt, every iperf3 JSON / tool output, vsw stats snapshots, the daemon
# logs, summary.txt, summary.md and summary.json, and one SVG chart per family
# (chart-*.svg: bench/report/charts.ts); bench/results/latest links to it.
set -euo pipefail
SELF=$(readlink -f "$0")
BENCH=$(dirname "$SELF")
REPO=$(cd "$BENCH/.." && pwd)
usage(){ sed -n 's/^# \{0,1\}//; /^Usage:/,/^Progress:/p' "$SELF" | sed '$d'; }
CMD=run; CMD_ARG=; QUICK=0; SCALE=
while [ $# -gt 0 ]; do
  case $1 in
    run|cleanup) CMD=$1;;
    summary) CMD=summary; CMD_ARG=${2:-}; [ $# -gt 1 ] && shift;;
    --quick) QUICK=1;;
    --scale) SCALE=also;;
    --scale-only) SCALE=only;;
    -h|--help) usage; exit 0;;
    *) echo "e2e.sh: unknown argument '$1'" >&2; usage >&2; exit 2;;
  esac; shift
done
if [ "$QUICK" = 1 ]; then T=${T:-2}; REPS=${REPS:-1}; DNS_T=${DNS_T:-2}; fi
T=${T:-5}
REPS=${REPS:-3}
TESTS=${TESTS:-"tcp_def tcp_off udp ping sockperf mac1 mac1000 nat_tcp_def nat_tcp_off dns"}
DNS_T=${DNS_T:-10}
DNSPERF_OPTS=${DNSPERF_OPTS:-"-c 4 -q 100 -Q 200000 -t 2"}
ROWS=${ROWS:-"bridge vsw"}
WORKERS=${WORKERS:-2}
LOCK=${LOCK:-/tmp/vsw-bench.lock}
BASE=${BASE:-/tmp/vsw-e2e}
RUN=$BASE/run
RESULTS=${RESULTS:-$REPO/bench/results}
export T REPS

# shellcheck source=bench/lib.sh
. "$BENCH/lib.sh"
# shellcheck source=bench/l2.sh
. "$BENCH/l2.sh"
# shellcheck source=bench/forwarding.sh
. "$BENCH/forwarding.sh"
# shellcheck source=bench/l3.sh
. "$BENCH/l3.sh"
# shellcheck source=bench/taps.sh
. "$BENCH/taps.sh"
# shellcheck source=bench/scale.sh
. "$BENCH/scale.sh"
ALL_TESTS="$L2_TESTS $FWD_TESTS $TAPS_TESTS $L3_TESTS $SCALE_TESTS"
case $SCALE in   # --scale: the scale tests not already asked for, after the others
  also) for t in $SCALE_TESTS; do case " $TESTS " in *" $t "*) ;; *) TESTS="$TESTS $t";; esac; done;;
  only) TESTS=$SCALE_TESTS;;
esac

summary(){ node "$SUMMARY_JS" e2e "$1"; }
taps_summary(){ node "$SUMMARY_JS" taps "$1"; }
# charts DIR: the SVG charts of a run (a run whose charts cannot be drawn still has its tables)
charts(){ node "$SUMMARY_JS" charts "$1" || log "charts of $1 not drawn (the tables above stand)"; }

cleanup(){ # only what this script made: its processes, its vb-* namespaces, their /etc/netns files
  scale_cleanup
  if [ -d "$RUN" ]; then
    kill_pidfiles "$RUN"/srv-*.pid
    local p1 p2   # the two daemons stop side by side
    stop_daemon "$RUN/vswd.pid" "$SOCK" vb-v1 vb-v2 & p1=$!
    stop_daemon "$RUN/vswnd.pid" "$NSOCK" vb-nv1 vb-nv2 vb-nv3 vb-nv4 vb-nv5 & p2=$!
    wait "$p1" "$p2" || true   # stop_daemon fails on nothing it is given
  fi
  ns_cleanup $L2_NSS $L3_NSS
  veth_cleanup $L2_LINKS $L3_LINKS
  rm -rf "$RUN"
}

# Frames the kernel dropped on vsw's AF_PACKET sockets (receive queue full, before vsw read
# them): the "d" of `ss -0 -m` summed over the daemon's packet sockets. vsw's own counters
# (`vsw stats`) do not see these.
sock_drops(){ local s
  s=$(nsx "${1:-vb-vh}" ss -0 -a -m -n 2>/dev/null) || s=   # no socket list: no drops counted
  sed -n 's/.*skmem:(.*,d\([0-9]*\)).*/\1/p' <<<"$s" | awk '{s+=$1} END{print s+0}'; }

SNAP=0
vsw_snapshot(){ # vsw_snapshot TEST [l2|l3]: per-port counters after a test (the summary prints drops per test)
  local g=${2:-l2} f; if is_l3 "$1"; then g=l3; fi
  if [ "$g" = l3 ]; then
    case " $ROWS_L3 " in *" vsw "*) ;; *) return 0;; esac
    SNAP=$((SNAP + 1)); f=$RES/vswn.stats.$(printf %02d $SNAP).$1.json
    vswn stats --format json >"$f" 2>/dev/null || note vsw "vsw stats (routed) after $1 failed"
  else
    case " $ROWS " in *" vsw "*) ;; *) return 0;; esac
    SNAP=$((SNAP + 1)); f=$RES/vsw.stats.$(printf %02d $SNAP).$1.json
    vsw stats --format json >"$f" 2>/dev/null || note vsw "vsw stats after $1 failed"
  fi; }

# PERF=1: a CPU profile of the vsw daemon during each vsw run (perf record -g, 499 Hz), kept as
# perf.TEST.REP.data with its flat top (perf.TEST.REP.txt: shared object and symbol, >= 1 %;
# the JavaScript is [unknown] in node's anonymous JIT memory). Off by default.
PERF_PID=; PERF_OUT=
perf_start(){ local pid=$VSW_PID
  [ "${PERF:-0}" = 1 ] && command -v perf >/dev/null || return 0
  if is_l3 "$1"; then pid=$VSWN_PID; elif [ "$1" = scale_w1 ]; then pid=$VSWW_PID; fi
  [ -n "$pid" ] || return 0
  PERF_OUT=$RES/perf.$1.$2
  perf record -q -F 499 -g -p "$pid" -o "$PERF_OUT.data" >/dev/null 2>"$PERF_OUT.err" & PERF_PID=$!; }
perf_stop(){ [ -n "$PERF_PID" ] || return 0
  kill -INT "$PERF_PID" 2>/dev/null || true; wait "$PERF_PID" 2>/dev/null || true   # perf ends on SIGINT, writing its file
  perf report -i "$PERF_OUT.data" --stdio --no-children -g none --sort dso,sym --percent-limit 1 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40 >"$PERF_OUT.txt" || true
  PERF_PID=; }

# test_rows TEST: the rows it runs on (the L2 ones, or the routed ones)
test_rows(){ if is_l3 "$1"; then echo "$ROWS_L3"; else echo "$ROWS"; fi; }
# est_step TEST: the seconds one row of one rep of TEST takes (est_TEST of its family file, if any)
est_step(){
  if declare -F "est_$1" >/dev/null; then "est_$1"; return; fi
  case $1 in
    tcp_*|nat_tcp_*) echo $((T + 3));;
    dns) echo $((DNS_T + 1));;
    ping) echo 3;;
    taps) set -- $TAPS_CONDS; echo $(( $# * (2 * T + 6) ));;
    *) echo $((T + 1));;
  esac; }
TEST_OVERHEAD=3   # a test's warm-up, pre/post hooks and stats snapshot, in seconds (progress only)
est_overhead(){ if declare -F "ovh_$1" >/dev/null; then echo $(( $("ovh_$1") + TEST_OVERHEAD )); else echo "$TEST_OVERHEAD"; fi; }

# run_test TEST: pre_TEST (offloads), a warm-up per row, REPS x every row (m_TEST ROW REP,
# order reversed on even reps; the vsw row also counts the kernel's drops on its sockets),
# post_TEST, then the vsw stats snapshot.
run_test(){ local t=$1 r row order d0 rows hns=vb-vh est nrows
  rows=$(test_rows "$t"); if is_l3 "$t"; then hns=vb-nvh; fi
  [ -n "$rows" ] || { log "$t: no row set up for it"; return 0; }
  est=$(est_step "$t"); set -- $rows; nrows=$#
  if declare -F "pre_$t" >/dev/null; then "pre_$t"; fi
  for row in $rows; do if is_l3 "$t"; then l3warm "$row" "$t"; else warm "$row" "$t"; fi; done
  for r in $(seq "$REPS"); do
    order=$rows; if [ $((r % 2)) = 0 ]; then order=$(reversed $rows); fi
    for row in $order; do
      progress_step "$est" "$t: rep $r/$REPS, row $row ($(( (r - 1) * nrows + $(idx_of "$row" $order) ))/$((REPS * nrows)) of this test; T=$T s)"
      if [ "$row" = vsw ]; then
        perf_start "$t" "$r"
        d0=$(sock_drops $hns); "m_$t" "$row" "$r"; rec vsw "${t}_kdrops" "$r" $(( $(sock_drops $hns) - d0 ))
        perf_stop
      else "m_$t" "$row" "$r"; fi
    done
  done
  if declare -F "post_$t" >/dev/null; then "post_$t"; fi
  sleep 1.2   # vsw reads the kernel's per-socket drop counters once a second: let this test's arrive
  vsw_snapshot "$t"
  progress_extra "$(est_overhead "$t")"
}
idx_of(){ local w=$1 i=0 x; shift; for x in "$@"; do i=$((i + 1)); [ "$x" = "$w" ] && { echo $i; return; }; done; echo 0; }

# ------------------------------------------------------------ main
case $CMD in
  cleanup) cleanup; exit 0;;
  summary) [ -n "$CMD_ARG" ] || { echo "usage: $0 summary RESULTDIR"; exit 2; }
           [ -f "$SUMMARY_JS" ] || { echo "e2e.sh: $SUMMARY_JS is missing: build first (npm run build)" >&2; exit 1; }
           summary "$CMD_ARG"
           if grep -q "$(printf '\t')taps_" "$CMD_ARG/raw.tsv" 2>/dev/null; then echo; taps_summary "$CMD_ARG"; fi
           charts "$CMD_ARG"
           exit 0;;
esac
[ "$(id -u)" = 0 ] || { echo "e2e.sh: must run as root (namespaces, veths)" >&2; exit 1; }
RUN_T0=$(date +%s)
mkdir -p "$BASE"
exec 9>"$BASE/e2e.lock"
flock -n 9 || { echo "e2e.sh: another run holds $BASE/e2e.lock" >&2; exit 1; }
NEED_L2=0; NEED_L3=0
for t in $TESTS; do
  case " $ALL_TESTS " in *" $t "*) ;; *) echo "e2e.sh: unknown test $t" >&2; exit 2;; esac
  if is_l3 "$t"; then NEED_L3=1; else NEED_L2=1; fi
done
PKGS=(iperf3:iperf3 trafgen:netsniff-ng sockperf:sockperf jq:jq bc:bc ethtool:ethtool ping:iputils-ping
      flock:util-linux nsenter:util-linux ss:iproute2)
if [ "$NEED_L3" = 1 ]; then PKGS+=(iptables:iptables dnsmasq:dnsmasq-base dnsperf:dnsperf dig:dnsutils curl:curl); fi   # the routed tests' own tools
ensure_pkgs "${PKGS[@]}" || exit 1
ensure_build || exit 1                           # the summary needs dist/ even without a vsw row
cleanup                                          # leftovers of a killed run (our vb-* names only)
RES=$RESULTS/$(date +%Y%m%d-%H%M%S)
mkdir -p "$RES" "$RUN"; : >"$RES/raw.tsv"; : >"$RES/notes.txt"
ln -sfn "$(basename "$RES")" "$RESULTS/latest"
trap 'cleanup' EXIT; trap 'exit 130' INT TERM
VSW_PID=; VSWN_PID=; DNSMASQ_PID=; DAEMON_PID=

{ echo "$(date -Is) kernel $(uname -r), $(nproc) CPUs, node $(node --version); T=$T s per run (+1 s iperf3 -O 1 for TCP), REPS=$REPS (medians); MTU 1500, IPv6 off"
  echo "vsw $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null)$(cd "$REPO" && [ -n "$(git status --porcelain -- control dataplane workers native 2>/dev/null)" ] && echo ' (+ uncommitted changes)'), --workers $WORKERS${VSW_ARGS:+ $VSW_ARGS}; iperf3 $(iperf3 --version | awk 'NR==1{print $2}'), tcp_congestion_control=$(sysctl -n net.ipv4.tcp_congestion_control)"
  if [ "$NEED_L2" = 1 ]; then echo "tests after tcp_off run with offloads off in the containers (as in peers.sh); trafgen -P 1, 60-byte frames; vsw L2 network --port-security $PORT_SECURITY"; fi
  if [ "$NEED_L3" = 1 ]; then echo "routed: kernel = bridge + iptables MASQUERADE ($(iptables --version | awk '{print $2, $3}')) + dnsmasq $(dnsmasq --version | awk 'NR==1{print $3}'); vsw = second daemon with --uplink; nat_tcp_off: offloads off in the client container; dnsperf $(dnsperf -h 2>&1 | sed -n 's/^Version //p') -l $DNS_T $DNSPERF_OPTS, query 'svc A' (4 addresses)"; fi
  echo "load avg at start: $(cut -d' ' -f1-3 /proc/loadavg); busiest processes: $(ps -eo pcpu=,comm= --sort=-pcpu | awk 'NR<=4{printf "%s%s %s%%", (NR>1?", ":""), $2, $1}')"; } >"$RES/conditions.txt"
echo "svc A" >"$RUN/dns-queries"

# Rows per group: ROWS = rows of the L2 tests (the names the L2 code uses), ROWS_L3 = rows of
# the routed tests. A row that fails to come up is skipped in its group and fails the run.
ROWS_OK=; ROWS_L3=; FAILED=
for row in $ROWS; do
  if [ "$NEED_L2" = 1 ]; then
    log "setting up $row"
    if "up_$row"; then ROWS_OK="$ROWS_OK $row"; else note "$row" "setup failed: row skipped"; FAILED=1; fi
  fi
  if [ "$NEED_L3" = 1 ]; then
    log "setting up $row (routed)"
    if "up_l3_$row"; then ROWS_L3="$ROWS_L3 $row"; else note "$row" "routed setup failed: row skipped in the routed tests"; FAILED=1; fi
  fi
done
# shellcheck disable=SC2086
ROWS=$(echo $ROWS_OK); ROWS_L3=$(echo $ROWS_L3)
[ -n "$ROWS$ROWS_L3" ] || { log "no row could be set up"; exit 1; }
case " $ROWS " in *" bridge "*) echo "bridge: br_netfilter bridge-nf-call-iptables=$(nsx vb-bh sysctl -n net.bridge.bridge-nf-call-iptables 2>/dev/null || echo n/a) in vb-bh" >>"$RES/conditions.txt";; esac
echo "dist built $(date -u -r "$CLI" +%FT%TZ); sources newer than their dist/*.js: $(cd "$REPO" && n=0; for f in $(git ls-files control dataplane workers | grep '\.ts$'); do if [ "$f" -nt "dist/${f%.ts}.js" ]; then n=$((n + 1)); fi; done; echo $n) (BUILD=1 rebuilds first)" >>"$RES/conditions.txt"
case " $ROWS_L3 " in *" bridge "*) echo "bridge (routed): br_netfilter bridge-nf-call-iptables=$(nsx vb-nbh sysctl -n net.bridge.bridge-nf-call-iptables 2>/dev/null || echo n/a) in vb-nbh" >>"$RES/conditions.txt";; esac
vsw_snapshot start l2
vsw_snapshot start l3
# idle cost of the daemons (both run during every test when L2 and routed tests are mixed)
i0=$(proc_ticks "$VSW_PID" "$VSWN_PID"); sleep 2; i1=$(proc_ticks "$VSW_PID" "$VSWN_PID")
echo "idle vsw daemons ($(echo ${VSW_PID:+L2} ${VSWN_PID:+routed})): $(awk -v t=$((i1 - i0)) -v hz="$HZ" 'BEGIN{printf "%.3f", t/hz/2}') cores in all over 2 s before the tests" >>"$RES/conditions.txt"
T_START=$(date +%s)
steps=0; secs=0
for t in $TESTS; do
  set -- $(test_rows "$t"); [ $# -gt 0 ] || continue
  steps=$((steps + REPS * $#)); secs=$((secs + REPS * $# * $(est_step "$t") + $(est_overhead "$t")))
done
progress_plan "$steps" "$secs"
log "plan: $(echo $TESTS | wc -w) tests, $steps steps (REPS=$REPS, T=$T s), about $(mmss "$secs") (set up in $(mmss $((T_START - RUN_T0))))"
for t in $TESTS; do run_test "$t"; done
T_END=$(date +%s)
log "tests took $(mmss $((T_END - T_START)))"
echo "load avg at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RES/conditions.txt"
cleanup; trap - EXIT
echo
summary "$RES"
case " $TESTS " in *" taps "*) echo; taps_summary "$RES";; esac
charts "$RES"
echo
echo "raw results: $RES"
echo "total time: $(mmss $(( $(date +%s) - RUN_T0 ))) (set up $(mmss $((T_START - RUN_T0))), tests $(mmss $((T_END - T_START))))"
# A row that could not be set up is a failed run, even though the other rows were measured.
[ -z "$FAILED" ] || exit 1
