#!/usr/bin/env bash
# vlan.sh -- what 802.1Q tagging costs vsw: the same path measured tagged and untagged, in one
# run (issue #4's bench; e2e.sh is the untagged vsw-vs-kernel bench).
#
# The path: container vl-a1 on an access port of VLAN 10 of daemon A -> trunk ta ==veth==
# tb, a trunk of daemon B -> access port of VLAN 10 -> container vl-b1 (10.89.10.2 ->
# 10.89.10.130; MTU 1500, IPv6 off). Both daemons are vsw, each in its own "host" namespace
# (vl-ha, vl-hb), each with --workers $WORKERS.
#   tagged    the trunks carry VLAN 10 tagged: A pushes the tag, B pops it (and back)
#   untagged  the same trunks with --native 10: VLAN 10 crosses the veth untagged
#             (switching modes = `vsw trunk rm` + `vsw trunk add` on both daemons, nothing else)
#   kernel    reference: two Linux bridges joined by a veth, untagged. The tagged kernel row
#             (bridge vlan_filtering) cannot be built here: this kernel has no
#             CONFIG_BRIDGE_VLAN_FILTERING (it depends on VLAN_8021Q, which is not set either);
#             the script says so in the summary when `ip link add type bridge vlan_filtering 1`
#             is refused.
# Every repetition measures the rows back to back, rotating which goes first.
#
# Tests (methods of e2e.sh / ../shared/anchors/peers.sh):
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
# Output: a table on stdout; bench/results/vlan-<stamp>/ holds raw.tsv, every tool output,
# both daemons' logs and summary.txt.
set -u
SELF=$(readlink -f "$0")
REPO=$(cd "$(dirname "$SELF")/.." && pwd)
T=${T:-5}
REPS=${REPS:-3}
TESTS=${TESTS:-"tcp_def tcp_off udp ping"}
ROWS=${ROWS:-"untagged tagged kernel"}
WORKERS=${WORKERS:-2}
LOCK=${LOCK:-/tmp/vsw-bench.lock}
BASE=${BASE:-/tmp/vsw-vlan-bench}
RUN=$BASE/run
RESULTS=${RESULTS:-$REPO/bench/results}
HZ=$(getconf CLK_TCK)
CLI=$REPO/dist/control/cli.js
SOCKA=$RUN/a.sock
SOCKB=$RUN/b.sock
IPA=10.89.10.2
IPB=10.89.10.130
KIPA=10.89.11.2
KIPB=10.89.11.3
NSS="vl-ha vl-hb vl-a1 vl-b1 vl-kh vl-ka vl-kb"   # every namespace this script may create

log(){ echo "[$(date +%T)] $*" >&2; }
nsx(){ local ns=$1; shift; ip netns exec "$ns" "$@"; }
vswa(){ timeout 20 node "$CLI" --socket "$SOCKA" "$@"; }
vswb(){ timeout 20 node "$CLI" --socket "$SOCKB" "$@"; }

kill_pid(){ local p=$1 sig=${2:-TERM} i; [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
  kill -"$sig" "$p" 2>/dev/null; for i in $(seq 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null; true; }

cleanup(){
  if [ -d "$RUN" ]; then
    for f in "$RUN"/srv-*.pid; do [ -s "$f" ] && kill_pid "$(cat "$f")"; rm -f "$f"; done
    [ -S "$SOCKA" ] && vswa rm -f vl-a1 >/dev/null 2>&1
    [ -S "$SOCKB" ] && vswb rm -f vl-b1 >/dev/null 2>&1
    for f in "$RUN"/d*.pid; do [ -s "$f" ] && kill_pid "$(cat "$f")" INT; rm -f "$f"; done
  fi
  local n p
  for n in $NSS; do
    [ -e "/etc/netns/$n" ] && rm -rf "/etc/netns/$n"
    [ -e "/run/netns/$n" ] || continue
    for p in $(ip netns pids "$n" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$n" 2>/dev/null
  done
  rm -rf "$RUN"
}

ns_init(){ ip netns add "$1" && ip -n "$1" link set lo up && nsx "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; }

# start_daemon NS SOCK NAME: nsenter --net (not ip netns exec: that one's private mount
# namespace would hide the container namespaces the daemon makes).
start_daemon(){
  local ns=$1 sock=$2 name=$3 i pid
  mkdir -p "$RUN/$name-state"
  nsenter --net="/run/netns/$ns" node "$CLI" --socket "$sock" daemon --state-dir "$RUN/$name-state" \
    --workers "$WORKERS" --default-subnet 10.89.21.0/24 >"$RES/$name-daemon.log" 2>&1 &
  pid=$!; echo $pid >"$RUN/d$name.pid"
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || { log "daemon $name exited: $(tail -3 "$RES/$name-daemon.log")"; return 1; }
    timeout 5 node "$CLI" --socket "$sock" network ls >/dev/null 2>&1 && { echo "$pid"; return 0; }
    sleep 0.2
  done
  log "daemon $name did not answer"; return 1
}

up_vsw(){
  ns_init vl-ha && ns_init vl-hb || return 1
  ip link add ta netns vl-ha type veth peer name tb netns vl-hb || return 1
  PIDA=$(start_daemon vl-ha "$SOCKA" a) && PIDB=$(start_daemon vl-hb "$SOCKB" b) || return 1
  vswa network create --vlan 10 --subnet 10.89.10.0/24 --ip-range 10.89.10.0/25 v10 >/dev/null &&
  vswb network create --vlan 10 --subnet 10.89.10.0/24 --gateway 10.89.10.129 --ip-range 10.89.10.128/25 v10 >/dev/null &&
  vswa run -d --name vl-a1 --network v10 --ip "$IPA" -- sleep infinity >/dev/null &&
  vswb run -d --name vl-b1 --network v10 --ip "$IPB" -- sleep infinity >/dev/null || return 1
  for n in vl-a1 vl-b1; do nsx "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1; done
  nsx vl-b1 iperf3 -s -D -B "$IPB" --pidfile "$RUN/srv-vsw.pid" >/dev/null 2>&1
  mode tagged
}

# mode tagged|untagged: the trunks carry VLAN 10 tagged, or as their native VLAN.
mode(){
  local extra=(); [ "$1" = untagged ] && extra=(--native 10)
  vswa trunk rm ta >/dev/null 2>&1; vswb trunk rm tb >/dev/null 2>&1
  vswa trunk add ta "${extra[@]}" >/dev/null && vswb trunk add tb "${extra[@]}" >/dev/null || return 1
  local i; for i in $(seq 50); do nsx vl-a1 ping -c 1 -W 1 "$IPB" >/dev/null 2>&1 && return 0; sleep 0.2; done
  log "mode $1: $IPB unreachable"; return 1
}

up_kernel(){
  ns_init vl-kh && ns_init vl-ka && ns_init vl-kb || return 1
  if nsx vl-kh ip link add kbv type bridge vlan_filtering 1 2>/dev/null; then
    nsx vl-kh ip link del kbv; KERNEL_VLAN="available (not used by this row)"
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
  for l in kb1 kb2 kl1 kl2 kpa kpb; do nsx vl-kh ip link set "$l" up; done
  nsx vl-ka ip addr add "$KIPA/24" dev eth0 && nsx vl-ka ip link set eth0 up &&
  nsx vl-kb ip addr add "$KIPB/24" dev eth0 && nsx vl-kb ip link set eth0 up || return 1
  nsx vl-kb iperf3 -s -D -B "$KIPB" --pidfile "$RUN/srv-kernel.pid" >/dev/null 2>&1
  local i; for i in $(seq 50); do nsx vl-ka ping -c 1 -W 1 "$KIPB" >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}

src_of(){ [ "$1" = kernel ] && echo vl-ka || echo vl-a1; }
dst_of(){ [ "$1" = kernel ] && echo "$KIPB" || echo "$IPB"; }
dst_ns(){ [ "$1" = kernel ] && echo vl-kb || echo vl-b1; }

offloads(){ # offloads on|off ROW
  local n; for n in "$(src_of "$2")" "$(dst_ns "$2")"; do nsx "$n" ethtool -K eth0 tx "$1" tso "$1" gso "$1" >/dev/null 2>&1; done
}

cpu_ticks(){ local s=0 p v; for p in $PIDA $PIDB; do v=$(awk '{print $14+$15}' /proc/$p/stat 2>/dev/null) && s=$((s + v)); done; echo $s; }

# measure ROW TEST REP: one timed run (under the shared bench lock), prints "value cpu_cores".
measure(){
  local row=$1 test=$2 rep=$3 f="$RES/$1.$2.$3" src dst t0 t1 c0 c1 v
  src=$(src_of "$row"); dst=$(dst_of "$row")
  [ "$row" = kernel ] || mode "$row" >/dev/null || { echo "nan nan"; return; }
  case $test in tcp_off) offloads off "$row";; *) offloads on "$row";; esac
  c0=$(cpu_ticks); t0=$(date +%s.%N)
  case $test in
    tcp_def|tcp_off)
      flock "$LOCK" timeout $((T + 20)) ip netns exec "$src" iperf3 -c "$dst" -t "$T" -O 1 --connect-timeout 3000 -J >"$f.json" 2>"$f.err"
      v=$(jq '.end.sum_received.bits_per_second / 1e9' "$f.json" 2>/dev/null);;
    udp)
      flock "$LOCK" timeout $((T + 20)) ip netns exec "$src" iperf3 -c "$dst" -u -l 64 -b 0 -t "$T" --connect-timeout 3000 -J >"$f.json" 2>"$f.err"
      v=$(jq '(.end.sum.packets - .end.sum.lost_packets) / .end.sum.seconds / 1000' "$f.json" 2>/dev/null);;
    ping)
      flock "$LOCK" ip netns exec "$src" ping -n -q -c 200 -i 0.01 "$dst" >"$f.txt" 2>"$f.err"
      v=$(sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p' "$f.txt");;
  esac
  t1=$(date +%s.%N); c1=$(cpu_ticks)
  offloads on "$row"
  local cpu=nan; [ "$row" = kernel ] || cpu=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v w="$(echo "$t1 - $t0" | bc -l)" 'BEGIN{printf "%.3f", c/hz/w}')
  echo "${v:-nan} $cpu"
}

summary(){ node - "$RES/raw.tsv" "$KERNEL_VLAN" <<'JS'
const fs = require('fs');
const [file, kernelVlan] = process.argv.slice(2);
const rows = fs.readFileSync(file, 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t'));
const med = (xs) => { const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b); return s.length ? s[(s.length - 1) >> 1] : NaN; };
const get = (row, test, col) => med(rows.filter((r) => r[0] === row && r[1] === test).map((r) => Number(r[col])));
const names = { tcp_def: 'TCP Gbit/s, default offloads', tcp_off: 'TCP Gbit/s, offloads off', udp: 'UDP 64 B received kpps', ping: 'ping avg ms (200 x 10 ms)' };
const tests = [...new Set(rows.map((r) => r[1]))];
const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const out = [];
out.push(`| metric (median) | kernel, untagged | vsw untagged | vsw tagged | tagged/untagged |`);
out.push('|---|---:|---:|---:|---:|');
for (const t of tests) {
  const u = get('untagged', t, 3), g = get('tagged', t, 3), k = get('kernel', t, 3);
  out.push(`| ${names[t] ?? t} | ${f(k)} | ${f(u)} | ${f(g)} | ${f(g / u, 3)} |`);
}
for (const t of tests) {
  if (t === 'ping') continue;
  const u = get('untagged', t, 4), g = get('tagged', t, 4);
  const uv = get('untagged', t, 3), gv = get('tagged', t, 3);
  // CPU per unit of work: cores / (Gbit/s or kpps); tagged over untagged.
  out.push(`| both daemons' CPU (cores), ${names[t] ?? t} | - | ${f(u)} | ${f(g)} | per unit of work: ${f((g / gv) / (u / uv), 3)} |`);
}
out.push('');
out.push(`kernel bridge VLAN filtering: ${kernelVlan}`);
console.log(out.join('\n'));
JS
}

run(){
  [ "$(id -u)" = 0 ] || { echo "vlan.sh: needs root" >&2; exit 1; }
  for c in iperf3 jq ethtool bc nsenter flock; do command -v "$c" >/dev/null || { echo "vlan.sh: missing $c" >&2; exit 1; }; done
  [ -f "$CLI" ] && [ -f "$REPO/build/Release/vswio.node" ] || { echo "vlan.sh: build first (npm run build)" >&2; exit 1; }
  cleanup; mkdir -p "$RUN"
  local stamp; stamp=$(date +%Y%m%d-%H%M%S)
  RES=$RESULTS/vlan-$stamp; mkdir -p "$RES"
  trap 'cleanup' EXIT
  KERNEL_VLAN="not tried"
  case " $ROWS " in *" kernel "*) up_kernel || { log "kernel topology failed"; exit 1; };; esac
  case " $ROWS " in *" tagged "*|*" untagged "*) up_vsw || { log "vsw topology failed"; exit 1; };; esac
  printf 'row\ttest\trep\tvalue\tcpu\n' >"$RES/raw.tsv"
  local rows=($ROWS) rep t i n=${#rows[@]} row r
  for rep in $(seq "$REPS"); do
    for t in $TESTS; do
      for i in $(seq 0 $((n - 1))); do
        row=${rows[$(( (i + rep + ${#t}) % n ))]}
        r=$(measure "$row" "$t" "$rep")
        log "rep $rep $t $row: $r"
        printf '%s\t%s\t%s\t%s\t%s\n' "$row" "$t" "$rep" ${r} >>"$RES/raw.tsv"
      done
    done
  done
  { echo "vsw VLAN bench $(date -u +%FT%TZ): T=$T s, REPS=$REPS, WORKERS=$WORKERS, kernel $(uname -r), $(nproc) CPUs"
    summary; } | tee "$RES/summary.txt"
}

case "${1:-run}" in
  run) run;;
  cleanup) cleanup;;
  *) echo "usage: $0 [run|cleanup]" >&2; exit 2;;
esac
