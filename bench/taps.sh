# taps.sh -- e2e.sh's taps test: what `vsw capture` and live `vsw trace` cost, on l2.sh's
# topology (sourced by e2e.sh, after lib.sh, l2.sh and forwarding.sh; never run on its own).
# Not in the default TESTS; how to run and read it: docs/BENCH-TAPS.md.
#
# TESTS=taps, on the vsw row only (the kernel bridge has no such feature: it measures the same
# two figures once per rep, as the reference of the same run). In each rep the vsw row runs
# every condition back to back (order reversed on even reps, so drift hits both ends alike):
#   a1  no tap session (the pipeline's tracer is null)
#   b   vsw capture --port vb-v2 -w /dev/null                        every frame of c2's port copied
#   c   vsw capture --port vb-v2 --filter 'tcp port 9' -w /dev/null  matches nothing: the filter's cost
#   d   vsw trace --port vb-v1 --filter 'udp port 9' --format json   matches nothing: trace armed
#   e   vsw trace --port vb-v1 --format json                         every frame traced (worst case)
#   a2  no tap session again (the noise between two identical conditions)
# Each condition: the mac1 method (trafgen 60 B, 1 MAC, c1 -> c2, rx kpps) and iperf3 TCP
# c1 -> c2 with default offloads (Gbit/s). The tap starts in the background before the
# measurement (armed once the CLI says "capturing"/"tracing") and stops after it (SIGINT).
# Traces go to `wc -l` (counted, not kept). Per measurement: the daemon's CPU (as everywhere),
# the tap CLI's own CPU, the c1/c2 port counters (vsw stats) around the tap session, and what
# reached the tap: the capture's "N bytes of frames" (the CLI's closing message) against the
# pcap size of every frame the port moved (bytes + 16 per frame), the trace lines against
# the frames received on c1 -> frames lost on the way (ring full) or a sanity 0 for c and d.
# Its table (bench/report/taps.ts) comes after the main one, and in taps.txt / taps.md.
#   env: TAPS_CONDS, a subset of "a1 b c d e a2" (e.g. "a1 c d a2")

TAPS_TESTS="taps"
TAPS_CONDS=${TAPS_CONDS:-"a1 b c d e a2"}
TAP_PID=; TAP_WC=
taps_port(){ # taps_port CONTAINER -> "rxPackets rxBytes txPackets txBytes" of its port; nothing when stats fail (the caller notes it)
  local j; j=$(vsw stats --format json 2>/dev/null) || return 0
  jq -r --arg c "$1" \
    '[.[] | select(.container == $c)][0] // {} | "\(.rxPackets // 0) \(.rxBytes // 0) \(.txPackets // 0) \(.txBytes // 0)"' <<<"$j" 2>/dev/null \
    || true; }   # stats that are not JSON: nothing printed, the caller notes it
tap_start(){ # tap_start COND OUT: the tap of COND in the background (stderr in OUT.tap), armed
  local c=$1 out=$2 i fifo=$RUN/tap.fifo
  TAP_PID=; TAP_WC=
  case $c in
    b) node "$CLI" --socket "$SOCK" capture --port vb-v2 -w /dev/null 2>"$out.tap" & TAP_PID=$!;;
    c) node "$CLI" --socket "$SOCK" capture --port vb-v2 --filter 'tcp port 9' -w /dev/null 2>"$out.tap" & TAP_PID=$!;;
    d|e) rm -f "$fifo"; mkfifo "$fifo" || return 1
         wc -l <"$fifo" >"$out.lines" & TAP_WC=$!; echo "$TAP_WC" >"$RUN/srv-tapwc.pid"
         if [ "$c" = d ]; then node "$CLI" --socket "$SOCK" trace --port vb-v1 --filter 'udp port 9' --format json >"$fifo" 2>"$out.tap" &
         else node "$CLI" --socket "$SOCK" trace --port vb-v1 --format json >"$fifo" 2>"$out.tap" & fi
         TAP_PID=$!;;
    *) return 0;;
  esac
  echo "$TAP_PID" >"$RUN/srv-tap.pid"
  for i in $(seq 100); do
    if grep -q '^vsw: \(capturing\|tracing\)' "$out.tap" 2>/dev/null; then return 0; fi
    kill -0 "$TAP_PID" 2>/dev/null || break
    sleep 0.1
  done
  note vsw "taps $c: the tap did not start: $(head -2 "$out.tap" 2>/dev/null | tr '\n' ' ')"; tap_stop; return 1; }
tap_stop(){ local i
  if [ -n "$TAP_PID" ]; then
    kill_pid "$TAP_PID" INT 5
    wait "$TAP_PID" 2>/dev/null || true   # its status after SIGINT says nothing: what it wrote is read below
  fi
  if [ -n "$TAP_WC" ]; then   # the trace's reader ends when the CLI closes the fifo
    for i in $(seq 50); do kill -0 "$TAP_WC" 2>/dev/null || break; sleep 0.1; done
    kill_pid "$TAP_WC"
    wait "$TAP_WC" 2>/dev/null || true    # killed if the fifo never closed: then no trace count, noted by taps_one
  fi
  rm -f "$RUN/srv-tap.pid" "$RUN/srv-tapwc.pid" "$RUN/tap.fifo"; TAP_PID=; TAP_WC=; }
# taps_one ROW R COND: mac1 and TCP in condition COND (bridge row: COND=ref, no tap)
taps_one(){ local row=$1 r=$2 c=$3 k f out cfg p0='' p1 t0 t1 wall got tap
  for k in mac1 tcp; do
    f=$RES/$row.taps_$c.$k.$r; out=$f.txt; if [ "$k" = tcp ]; then out=$f.json; fi
    echo "$(date +%T) $row rep $r $c $k load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RES/taps-load.txt"
    tap=; case $c in b|c) tap=vb-v2;; d|e) tap=vb-v1;; esac
    if [ "$k" = mac1 ]; then cfg=$(mac_cfg "$row" 1) || continue; fi
    if [ -n "$tap" ]; then p0=$(taps_port "$tap"); fi
    tap_start "$c" "$f" || continue
    t0=0; if [ -n "$TAP_PID" ]; then t0=$(proc_ticks "$TAP_PID"); fi
    if [ "$k" = mac1 ]; then
      timed "$out" "$(pids_of "$row")" trafgen_rate "$(ns1 "$row")" "$(ns2 "$row")" "$cfg"
      if [ -s "$out" ]; then
        rec "$row" "taps_${c}_mac1" "$r" "$(awk '{print $2/1000}' "$out")"; rec "$row" "taps_${c}_mac1_tx" "$r" "$(awk '{print $1/1000}' "$out")"
      else note "$row" "taps $c mac1 rep $r: no result"; fi
    else
      timed "$out" "$(pids_of "$row")" timeout $((T + 20)) ip netns exec "$(ns1 "$row")" iperf3 -c "$IP2" -t "$T" -O 1 --connect-timeout 3000 -J
      if jq -e '.end.sum_received.bits_per_second' "$out" >/dev/null 2>&1; then
        rec "$row" "taps_${c}_tcp" "$r" "$(jq '.end.sum_received.bits_per_second/1e9' "$out")"
        rec "$row" "taps_${c}_tcp_retr" "$r" "$(jq '.end.sum_sent.retransmits // 0' "$out")"
      else rec "$row" "taps_${c}_tcp" "$r" 0; note "$row" "taps $c tcp rep $r: $(jq -r '.error // "no result"' "$out" 2>/dev/null | head -1)"; fi
    fi
    if [ "$row" = vsw ]; then rec vsw "taps_${c}_${k}_proccpu" "$r" "$(cpuf "$out" proc_cpu)"; fi
    rec "$row" "taps_${c}_${k}_syscpu" "$r" "$(cpuf "$out" sys_cpu)"
    if [ "$row" = vsw ]; then rec vsw "taps_${c}_${k}_rss_mb" "$r" "$(awk '/^VmRSS/{print $2/1024}' "/proc/$VSW_PID/status" 2>/dev/null)"; fi
    [ -n "$tap" ] || continue
    wall=$(cpuf "$out" wall); t1=$(proc_ticks "$TAP_PID")
    rec vsw "taps_${c}_${k}_tapcpu" "$r" "$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v w="$wall" 'BEGIN{if (w > 0) printf "%.3f", t/hz/w}')"
    sleep 0.5                                   # the daemon drains the rings every 20 ms: let the last records out
    p1=$(taps_port "$tap")
    tap_stop
    # shellcheck disable=SC2086
    set -- $p0 $p1
    [ $# = 8 ] || { note vsw "taps $c $k rep $r: no port counters for $tap ($p0 -> $p1)"; continue; }
    case $c in
      b|c) # frames (both directions) and their pcap size: 16-byte record header + frame
        got=$(sed -n 's/.*(\([0-9]*\) bytes of frames).*/\1/p' "$f.tap" 2>/dev/null | tail -1) || got=   # no tap output: noted below
        rec vsw "taps_${c}_${k}_frames" "$r" $(( $5 - $1 + $7 - $3 ))
        rec vsw "taps_${c}_${k}_pcap_want" "$r" $(( $6 - $2 + $8 - $4 + 16 * ($5 - $1 + $7 - $3) ))
        if [ -n "$got" ]; then rec vsw "taps_${c}_${k}_pcap_got" "$r" "$got"
        else note vsw "taps $c $k rep $r: no closing message from the capture: $(tail -1 "$f.tap" 2>/dev/null)"; fi;;
      d|e) # frames received on c1 and the traces of them
        rec vsw "taps_${c}_${k}_frames" "$r" $(( $5 - $1 ))
        got=$(tr -d ' ' <"$f.lines" 2>/dev/null) || got=                                             # no count: noted below
        if [ -n "$got" ]; then rec vsw "taps_${c}_${k}_traces" "$r" "$got"; else note vsw "taps $c $k rep $r: no trace count"; fi;;
    esac
  done; }
m_taps(){ local row=$1 r=$2 c conds=$TAPS_CONDS
  offloads on                                   # default offloads, as tcp_def (trafgen's raw frames do not care)
  if [ "$row" = bridge ]; then taps_one bridge "$r" ref; return; fi
  # shellcheck disable=SC2086
  if [ $((r % 2)) = 0 ]; then conds=$(reversed $conds); fi
  for c in $conds; do taps_one vsw "$r" "$c"; done; }
