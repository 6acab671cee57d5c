# lib.sh -- the shell helpers every bench script shares (sourced, never run).
#
# The sourcing script sets, before calling anything here:
#   REPO   the checkout (dist/ and build/ are looked for there)
#   BASE   the script's scratch directory (/tmp/...): apt and build logs
#   RUN    the run's state directory under BASE (pid files, sockets, configs); removed by cleanup
#   RES    the run's results directory (raw.tsv, notes.txt, tool output), once the run has one
#   LOCK   the bench lock (/tmp/vsw-bench.lock, shared with peers.sh): timed runs never overlap
#          another benchmark's
#
# Conventions: every script runs under `set -euo pipefail`. A helper that may fail says so
# (it returns non-zero and the caller decides); what a measurement failed to produce is a
# note (notes.txt, printed in the summary) or a missing figure, never an aborted run.

CLI=$REPO/dist/control/cli.js
SUMMARY_JS=$REPO/dist/bench/summary.js
HZ=$(getconf CLK_TCK)

log(){ echo "[$(date +%T)] $*" >&2; }
nsx(){ local ns=$1; shift; ip netns exec "$ns" "$@"; }

# ns_init NS: a namespace with lo up and IPv6 off (as the vsw daemon makes its containers)
ns_init(){ ip netns add "$1" && ip -n "$1" link set lo up &&
           nsx "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; }

# reversed WORDS...: the words in reverse order (even reps run the rows the other way round)
reversed(){ echo "$@" | tr ' ' '\n' | tac | tr '\n' ' '; }

# ------------------------------------------------------------ results
rec(){ printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RES/raw.tsv"; }        # rec ROW METRIC REP VALUE
note(){ printf '%s: %s\n' "$1" "$2" >>"$RES/notes.txt"; log "NOTE $1: $2"; }   # note ROW TEXT

# ------------------------------------------------------------ progress
# One line per step on stderr (log: a time stamp, then plain text; no terminal control
# codes, so a CI log reads as a terminal does): which test, which row, repetition i of n,
# and the time left. The estimate is the plan's seconds (progress_plan) scaled by how long
# the steps done so far took against their own estimates.
PROG_N=0; PROG_I=0; PROG_EST=0; PROG_EST_DONE=0; PROG_T0=0
progress_plan(){ PROG_N=$1; PROG_EST=$2; PROG_I=0; PROG_EST_DONE=0; PROG_T0=$(date +%s); }   # progress_plan STEPS SECONDS
mmss(){ printf '%d:%02d' $(($1 / 60)) $(($1 % 60)); }
# progress_step SECONDS TEXT: log the step about to start (its estimate SECONDS is counted as done from the next line on)
progress_step(){ local est=$1 el left; shift
  PROG_I=$((PROG_I + 1)); el=$(( $(date +%s) - PROG_T0 ))
  if [ "$PROG_EST_DONE" -gt 0 ] && [ "$el" -gt 0 ]; then left=$(( (PROG_EST - PROG_EST_DONE) * el / PROG_EST_DONE ))
  else left=$((PROG_EST - PROG_EST_DONE)); fi
  [ "$left" -ge 0 ] || left=0
  log "[$PROG_I/$PROG_N] $*; $(mmss "$el") elapsed, ~$(mmss "$left") left"
  PROG_EST_DONE=$((PROG_EST_DONE + est)); }
progress_extra(){ PROG_EST_DONE=$((PROG_EST_DONE + $1)); }   # progress_extra SECONDS: planned work between steps, done

# ------------------------------------------------------------ CPU sampling
sys_ticks(){ awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }   # busy ticks of the whole system
proc_ticks(){ # proc_ticks PID...: utime+stime ticks of the processes (all threads); gone or empty PIDs count 0
  local s=0 p v
  for p in "$@"; do
    [ -n "$p" ] || continue
    if v=$(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null); then s=$((s + v)); fi
  done
  echo "$s"; }
proc_wait_ns(){ # proc_wait_ns PID...: nanoseconds the processes' threads spent runnable but waiting for a CPU (schedstat)
  local p; for p in "$@"; do [ -n "$p" ] && cat /proc/"$p"/task/*/schedstat 2>/dev/null; done | awk '{s+=$2} END{printf "%.0f\n", s}'; }

# lock_held: whether the run already holds $LOCK, as under `flock /tmp/vsw-bench.lock bash
# bench/e2e.sh` (this shell inherited the locked descriptor) or `flock ... npm run bench`
# (npm passes no descriptor on, but the lock's holder in /proc/locks is one of our
# ancestors): locking the same file again through a descriptor of our own would wait on ourselves.
lock_held(){ local f want ino holder p
  want=$(readlink -f "$LOCK" 2>/dev/null) || return 1
  for f in /proc/$$/fd/*; do [ "$(readlink -f "$f" 2>/dev/null)" = "$want" ] && return 0; done
  ino=$(stat -c %i "$want" 2>/dev/null) || return 1
  for holder in $(awk -v i=":$ino" '$2 == "FLOCK" && substr($6, length($6) - length(i) + 1) == i {print $5}' /proc/locks); do
    p=$$
    while [ "$p" -gt 1 ]; do
      [ "$p" = "$holder" ] && return 0
      p=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f2) || break   # the field after state (a name may hold blanks)
      [ -n "$p" ] || break
    done
  done
  return 1; }
LOCK_HELD=; if lock_held; then LOCK_HELD=1; fi

# timed OUT PIDS cmd...: run cmd under the bench lock (taken per run, unless the whole run
# holds it: lock_held); stdout in OUT, stderr in OUT.err,
# "wall= sys_cpu= proc_cpu= proc_wait= rc=" in OUT.cpu (CPU in cores over the run's wall time;
# PIDS: comma-separated processes whose CPU is proc_cpu, or - for none; proc_wait: the time
# their threads were ready to run but had no CPU, in cores likewise). cmd may be a shell
# function. cmd's own failure is recorded as rc=, not returned: the caller reads OUT.
timed(){ local out=$1 pids=$2; shift 2
  ( if [ -z "${LOCK_HELD:-}" ]; then exec 8<>"$LOCK" && flock 8 || exit 1; fi
    local t0 t1 b0 b1 p0 p1 q0 q1 rc=0 list=${pids//,/ }
    [ "$pids" = - ] && list=
    # shellcheck disable=SC2086
    t0=$(date +%s.%N); b0=$(sys_ticks); p0=$(proc_ticks $list); q0=$(proc_wait_ns $list)
    "$@" >"$out" 2>"$out.err" || rc=$?
    # shellcheck disable=SC2086
    t1=$(date +%s.%N); b1=$(sys_ticks); p1=$(proc_ticks $list); q1=$(proc_wait_ns $list)
    awk -v t0="$t0" -v t1="$t1" -v b=$((b1 - b0)) -v p=$((p1 - p0)) -v q=$((q1 - q0)) -v hz="$HZ" -v rc=$rc -v pids="$pids" \
      'BEGIN{w=t1-t0; printf "wall=%.3f sys_cpu=%.3f proc_cpu=%s proc_wait=%s rc=%d\n", w, b/hz/w,
        (pids=="-"?"nan":sprintf("%.3f",p/hz/w)), (pids=="-"?"nan":sprintf("%.3f",q/1e9/w)), rc}' >"$out.cpu"
  ); }
cpuf(){ sed -n "s/.*$2=\([^ ]*\).*/\1/p" "$1.cpu"; }             # cpuf OUT FIELD: a field of OUT.cpu
rec_cpu(){ # rec_cpu ROW TEST REP OUT: the daemon's CPU (vsw row) and the system's, of run OUT
  local row=$1 test=$2 r=$3 f=$4
  if [ "$row" = vsw ]; then rec "$row" "${test}_proccpu" "$r" "$(cpuf "$f" proc_cpu)"; rec "$row" "${test}_procwait" "$r" "$(cpuf "$f" proc_wait)"; fi
  rec "$row" "${test}_syscpu" "$r" "$(cpuf "$f" sys_cpu)"; }

# ------------------------------------------------------------ packages, build
# ensure_pkgs CMD:PACKAGE...: apt-get install the packages whose command is missing
ensure_pkgs(){
  local need=() c
  for c in "$@"; do command -v "${c%%:*}" >/dev/null 2>&1 || need+=("${c#*:}"); done
  [ ${#need[@]} -eq 0 ] && return 0
  log "installing: ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >"$BASE/apt.log" 2>&1 \
    || { apt-get update >>"$BASE/apt.log" 2>&1
         DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >>"$BASE/apt.log" 2>&1; } \
    || { log "apt-get install failed (see $BASE/apt.log)"; return 1; }
}
# ensure_build: `npm run build` when BUILD=1 or a piece of dist/ or the addon is missing
ensure_build(){
  if [ "${BUILD:-0}" = 1 ] || [ ! -f "$CLI" ] || [ ! -f "$REPO/build/Release/vswio.node" ] || [ ! -f "$REPO/dist/workers/worker.js" ] \
     || [ ! -f "$SUMMARY_JS" ]; then
    log "building vsw (npm run build)"
    (cd "$REPO" && npm run build >"$BASE/build.log" 2>&1) || { log "build failed: $(tail -5 "$BASE/build.log")"; return 1; }
  fi
}

# ------------------------------------------------------------ processes
kill_pid(){ # kill_pid PID [SIGNAL] [WAIT_S]: signal, wait, then SIGKILL; a process already gone is fine
  local p=$1 sig=${2:-TERM} w=${3:-2} i
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
  kill -"$sig" "$p" 2>/dev/null || return 0        # it ended between the check and the signal
  for i in $(seq $((w * 10))); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true              # it ended during the last sleep
}
kill_pidfiles(){ local f; for f in "$@"; do [ -s "$f" ] || continue; kill_pid "$(cat "$f")"; rm -f "$f"; done; }

# ------------------------------------------------------------ the vsw daemon
vsw_at(){ local sock=$1; shift; timeout 20 node "$CLI" --socket "$sock" "$@"; }   # vsw_at SOCK ARGS: the CLI
# start_daemon NS SOCK NAME ARGS...: a vsw daemon in namespace NS, state $RUN/NAME-state,
# log $RES/NAME-daemon.log, pid in $RUN/NAMEd.pid and in DAEMON_PID once it answers.
start_daemon(){
  local ns=$1 sock=$2 name=$3 i pid; shift 3
  ensure_build || return 1
  mkdir -p "$RUN/$name-state"
  # nsenter, not `ip netns exec`: the latter gives the daemon a private mount namespace, and
  # the /run/netns/NAME mounts it makes for containers are then invisible to everyone else.
  nsenter --net="/run/netns/$ns" node "$CLI" --socket "$sock" daemon --state-dir "$RUN/$name-state" \
    --workers "$WORKERS" "$@" >"$RES/$name-daemon.log" 2>&1 &
  pid=$!; echo $pid >"$RUN/${name}d.pid"
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || { note vsw "daemon $name exited at start: $(tail -3 "$RES/$name-daemon.log" | tr '\n' ' ')"; return 1; }
    vsw_at "$sock" network ls >/dev/null 2>&1 && break
    sleep 0.2
  done
  vsw_at "$sock" network ls >/dev/null 2>&1 || { note vsw "daemon $name did not answer within 20 s"; return 1; }
  DAEMON_PID=$pid
}
# stop_daemon PIDFILE SOCK CONTAINERS...: remove the containers, then stop the daemon (SIGINT, 10 s)
stop_daemon(){
  local pf=$1 sock=$2 pid; shift 2
  pid=$(cat "$pf" 2>/dev/null) || pid=
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    # a container the daemon no longer knows is not an error here: cleanup removes what is left
    vsw_at "$sock" rm -f "$@" >/dev/null 2>&1 || true
    kill_pid "$pid" INT 10
  fi
  rm -f "$pf"
}

# ------------------------------------------------------------ cleanup (only what the script made)
# ns_cleanup NS...: delete the namespaces (killing what still runs in them) and the
# /etc/netns/NS files vsw writes for its containers
ns_cleanup(){
  local n p
  for n in "$@"; do
    if [ -e "/etc/netns/$n" ]; then rm -rf "/etc/netns/$n"; fi
    [ -e "/run/netns/$n" ] || continue
    for p in $(ip netns pids "$n" 2>/dev/null || true); do       # only inside our own namespaces
      kill -KILL "$p" 2>/dev/null || true                        # it may have ended meanwhile
    done
    ip netns del "$n" 2>/dev/null || rm -f "/run/netns/$n"
  done
}
# veth_cleanup NAME...: our veths are created inside our namespaces and go with them; a host
# end left in the machine's namespace (never expected) is ours by name only if it is a veth
veth_cleanup(){
  local n d
  for n in "$@"; do
    d=$(ip -d link show "$n" 2>/dev/null) || continue                  # no such link: nothing to do
    if grep -qw veth <<<"$d"; then ip link del "$n" 2>/dev/null || true; fi   # gone meanwhile: fine
  done
}
