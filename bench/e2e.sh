#!/usr/bin/env bash
# e2e.sh -- end-to-end benchmark: vsw next to the Linux kernel bridge, in one run.
#
# Same topology for both rows: a "host" namespace holding the switch, two container
# namespaces with a veth pair each (eth0 inside, MTU 1500, IPv6 off), addresses
# 10.89.0.2 -> 10.89.0.3.
#   bridge  vb-bh (Linux bridge vb-br) + vb-b1, vb-b2 (made here)
#   vsw     vb-vh (the vsw daemon, entered with nsenter) + vb-v1, vb-v2 (made by the daemon:
#           `vsw run -d --name vb-vN -- sleep infinity`)
# Both topologies exist at once and every repetition measures bridge and vsw back to back
# (alternating which goes first), so background load on the machine hits both rows alike.
#
# Tests (methods from /work/shared/anchors/peers.sh, so the figures compare with its anchors):
#   tcp_def   iperf3 TCP, default offloads                  Gbit/s, retransmits
#   tcp_off   iperf3 TCP, `ethtool -K eth0 tx off tso off gso off` in both containers
#             (offloads stay off for the tests below, like peers.sh)
#   udp       iperf3 -u -l 64 -b 0                          rx kpps, loss %
#   ping      200 pings at 10 ms                            avg ms
#   sockperf  ping-pong                                     avg / p99 us
#   mac1      trafgen 60-byte frames c1 -> c2's MAC, 1 source MAC          tx vs rx kpps
#   mac1000   same with 1000 source MACs
#   taps      (not in the default TESTS) what `vsw capture` and live `vsw trace` cost, vsw row only:
#             forwarding (mac1 method) and TCP in six tap conditions; section "taps" below,
#             docs/BENCH-TAPS.md
#
# Routed tests (issue #3), on a second pair of topologies that exists only when one of them
# is asked for: a container, its gateway in a "host" namespace, and an "outside" namespace
# (198.51.100.1, TEST-NET-2, running iperf3 -s) behind an uplink veth; container subnet
# 10.89.1.0/24, gateway 10.89.1.1, client 10.89.1.2.
#   bridge  vb-nbh: Linux bridge vb-nbr 10.89.1.1/24, ip_forward=1, uplink vb-nbu
#           198.51.100.2/24, `iptables -t nat -A POSTROUTING -s 10.89.1.0/24 ! -o vb-nbr -j
#           MASQUERADE`, dnsmasq on 10.89.1.1 (addn-hosts: svc -> 10.89.1.3-6, --no-resolv,
#           default cache); container vb-nb1; outside vb-nbo
#   vsw     vb-nvh: a second daemon, `--uplink vb-nvu --uplink-ip 198.51.100.2/24
#           --uplink-gateway 198.51.100.1 --dns 198.51.100.1` (nothing answers there: no
#           query leaves our namespaces), containers vb-nv1 (client) and vb-nv2..5 (`vsw run
#           -d --alias svc`: 10.89.1.3-6, the same four addresses); outside vb-nvo
#   nat_tcp_def  iperf3 TCP container -> outside through masquerade, default offloads
#   nat_tcp_off  same, `ethtool -K eth0 tx off tso off gso off` in the client container
#   dns          dnsperf from the container to the gateway, query file `svc A` (a name with
#                four A records): queries/s, avg latency, lost %; DNS_T=10 s per run,
#                DNSPERF_OPTS="-c 4 -q 100 -Q 200000 -t 2" (same for both rows)
# The NAT tests check that the outside server really talks to 198.51.100.2 (`ss` in the
# outside namespace mid-run); the DNS test checks that both servers give four answers.
# How to run and read them: docs/BENCH-L3.md.
#
# During each run: the vsw daemon's CPU (utime+stime of the process, all threads, / wall,
# in cores; dnsmasq's for the kernel row of `dns`) and the whole system's busy CPU (cores,
# from /proc/stat).
#
# Usage: bench/e2e.sh [run|cleanup|summary DIR]    (root; `npm run bench` = run)
#   env: T=5 seconds per test run, REPS=3 (medians are reported), TESTS="tcp_def tcp_off udp
#        ping sockperf mac1 mac1000 nat_tcp_def nat_tcp_off dns", ROWS="bridge vsw",
#        WORKERS=2 (vsw --workers), DNS_T=10, DNSPERF_OPTS (above), TAPS_CONDS (taps: a subset of
#        "a1 b c d e a2"),
#        RESULTS=bench/results, LOCK=/tmp/vsw-bench.lock (shared with peers.sh: timed runs
#        never overlap another benchmark's), BUILD=1 forces `npm run build` first.
# Output: a plain table and a markdown table on stdout (taps: its own table after it, also in
# taps.txt / taps.md); bench/results/<stamp>/ holds raw.tsv (row, metric, rep, value), every
# iperf3 JSON / tool output, vsw stats snapshots, the daemon log, summary.txt, summary.md and
# summary.json; bench/results/latest links to it.
set -u
SELF=$(readlink -f "$0")
REPO=$(cd "$(dirname "$SELF")/.." && pwd)
T=${T:-5}; export T
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
HZ=$(getconf CLK_TCK)
CLI=$REPO/dist/control/cli.js
SOCK=$RUN/vsw.sock
SUBNET=10.89.0.0/24
IP1=10.89.0.2
IP2=10.89.0.3
# routed tests (L3_TESTS): their own topologies, their own vsw daemon (NSOCK)
L3_TESTS=" nat_tcp_def nat_tcp_off dns "
NSOCK=$RUN/vswn.sock
NSUBNET=10.89.1.0/24
NGW=10.89.1.1
NIP1=10.89.1.2
OUT_IP=198.51.100.1                          # the outside server (TEST-NET-2, only in vb-nbo / vb-nvo)
UPL_IP=198.51.100.2                          # the uplink / masquerade address
NMETRICS=127.0.0.1:9469                      # the L3 daemon's metrics, on vb-nvh's own loopback
NSS="vb-b1 vb-b2 vb-bh vb-v1 vb-v2 vb-vh vb-nb1 vb-nbh vb-nbo vb-nv1 vb-nv2 vb-nv3 vb-nv4 vb-nv5 vb-nvh vb-nvo"   # every namespace this script may create
LINKS="vb-bp1 vb-bp2 vb-nbp1 vb-nbu vb-nvu"  # host ends of our veths (always made inside our namespaces)

log(){ echo "[$(date +%T)] $*" >&2; }
nsx(){ local ns=$1; shift; ip netns exec "$ns" "$@"; }

# ------------------------------------------------------------ internal: timed wrapper
# __timed OUT PIDS cmd...   (runs under flock $LOCK) -> stdout in OUT, stderr in OUT.err,
# "wall= sys_cpu= proc_cpu= rc=" in OUT.cpu. PIDS: comma-separated, or - for none.
if [ "${1:-}" = __timed ]; then
  shift; out=$1; pids=$2; shift 2
  busy(){ awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
  pt(){ local s=0 p v; for p in ${pids//,/ }; do
          v=$(awk '{print $14+$15}' /proc/$p/stat 2>/dev/null) && s=$((s+v)); done; echo $s; }
  t0=$(date +%s.%N); b0=$(busy); p0=$(pt)
  "$@" >"$out" 2>"$out.err"; rc=$?
  t1=$(date +%s.%N); b1=$(busy); p1=$(pt)
  awk -v t0="$t0" -v t1="$t1" -v b=$((b1-b0)) -v p=$((p1-p0)) -v hz="$HZ" -v rc=$rc -v pids="$pids" \
    'BEGIN{w=t1-t0; printf "wall=%.3f sys_cpu=%.3f proc_cpu=%s rc=%d\n", w, b/hz/w, (pids=="-"?"nan":sprintf("%.3f",p/hz/w)), rc}' >"$out.cpu"
  exit 0
fi
# __trafgen NSRC NSDST CFG -> "tx_pps rx_pps" (eth0 counters of both ends over the run)
if [ "${1:-}" = __trafgen ]; then
  shift; ns1=$1 ns2=$2 cfg=$3
  ctr(){ ip -n "$1" -s -j link show eth0 | jq ".[0].stats64.$2.packets"; }
  tx0=$(ctr "$ns1" tx); rx0=$(ctr "$ns2" rx); t0=$(date +%s.%N)
  ip netns exec "$ns1" timeout -s INT "$T" trafgen -i "$cfg" -o eth0 --no-sock-mem --notouch-irq -P 1 --no-cpu-stats >/dev/null 2>&1
  t1=$(date +%s.%N); sleep 0.3; tx1=$(ctr "$ns1" tx); rx1=$(ctr "$ns2" rx)
  awk -v w="$(echo "$t1 - $t0" | bc -l)" -v tx=$((tx1-tx0)) -v rx=$((rx1-rx0)) 'BEGIN{printf "%.0f %.0f\n", tx/w, rx/w}'
  exit 0
fi

# ------------------------------------------------------------ summary (node: medians, tables)
summary(){ node - "$1" <<'JS'
const fs = require('fs'), path = require('path');
const dir = process.argv[2];
const vals = new Map();   // "row\tmetric" -> number[]
for (const line of fs.readFileSync(path.join(dir, 'raw.tsv'), 'utf8').split('\n')) {
  const [row, m, , v] = line.split('\t');
  if (!m || v === undefined || v === '' || v === 'nan' || !isFinite(Number(v))) continue;
  const k = `${row}\t${m}`;
  if (!vals.has(k)) vals.set(k, []);
  vals.get(k).push(Number(v));
}
const median = (a) => { const s = [...a].sort((x, y) => x - y), n = s.length;
  return n === 0 ? null : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const med = (row, m) => median(vals.get(`${row}\t${m}`) ?? []);
const METRICS = [
  // [metric key, label, decimals, bridge has it]
  ['tcp_def_gbps', 'TCP Gbit/s, default offloads', 2], ['tcp_def_retr', 'TCP retransmits, default offloads', 0],
  ['tcp_off_gbps', 'TCP Gbit/s, offloads off in containers', 2], ['tcp_off_retr', 'TCP retransmits, offloads off', 0],
  ['udp_rx_kpps', 'UDP 64 B received kpps', 0], ['udp_tx_kpps', 'UDP 64 B sent kpps', 0], ['udp_loss_pct', 'UDP 64 B loss %', 1],
  ['ping_avg_ms', 'ping avg ms (200 x 10 ms)', 3], ['ping_p50_ms', 'ping median ms', 3], ['sockperf_avg_us', 'sockperf ping-pong avg us', 1],
  ['sockperf_p99_us', 'sockperf ping-pong p99 us', 1],
  ['mac1_tx_kpps', 'trafgen 60 B, 1 MAC: tx kpps', 0], ['mac1_rx_kpps', 'trafgen 60 B, 1 MAC: rx kpps', 0],
  ['mac1000_tx_kpps', 'trafgen 60 B, 1000 MACs: tx kpps', 0], ['mac1000_rx_kpps', 'trafgen 60 B, 1000 MACs: rx kpps', 0],
  ['fdb_entries', 'MAC table entries after 1000-MAC run', 0],
  // routed (bridge = kernel bridge + iptables MASQUERADE / dnsmasq)
  ['nat_tcp_def_gbps', 'NAT TCP Gbit/s, default offloads', 2], ['nat_tcp_def_retr', 'NAT TCP retransmits, default offloads', 0],
  ['nat_tcp_off_gbps', 'NAT TCP Gbit/s, offloads off in container', 2], ['nat_tcp_off_retr', 'NAT TCP retransmits, offloads off', 0],
  ['dns_qps', 'DNS queries/s, 4-address name (bridge row: dnsmasq)', 0], ['dns_lat_us', 'DNS avg latency us', 0],
  ['dns_lost_pct', 'DNS queries lost %', 2], ['dns_proccpu', 'DNS server CPU (cores): dnsmasq, vsw daemon', 2],
];
const TESTS = [['tcp_def', 'TCP default'], ['tcp_off', 'TCP offloads off'], ['udp', 'UDP 64 B'], ['ping', 'ping'],
  ['sockperf', 'sockperf'], ['mac1', 'trafgen 1 MAC'], ['mac1000', 'trafgen 1000 MACs'],
  ['nat_tcp_def', 'NAT TCP default'], ['nat_tcp_off', 'NAT TCP offloads off'], ['dns', 'DNS']];
for (const [t, l] of TESTS) if (t !== 'dns') METRICS.push([`${t}_proccpu`, `vsw daemon CPU (cores), ${l}`, 2]);
for (const [t, l] of TESTS) METRICS.push([`${t}_syscpu`, `system CPU (cores of 2), ${l}`, 2]);
// Peers measured by ../shared/anchors/peers.sh on this machine (peers-2026-11-22.txt, medians
// of 3): kmasq = kernel bridge + iptables MASQUERADE, ovs_nat = Open vSwitch userspace
// conntrack NAT, pasta / slirp = L4 translators; dnsmasq with dnsperf -c 1 -q 100 -l 10.
const ANCHORS = {
  nat_tcp_def_gbps: 'kmasq 14.50, pasta 0.19, slirp 0.64',
  nat_tcp_off_gbps: 'kmasq 2.56, ovs_nat 0.95',
  nat_tcp_off_proccpu: 'ovs_nat 0.98',
  dns_qps: 'dnsmasq 75991 (-c 1)',
  dns_lat_us: 'dnsmasq 1223 (-c 1)',
  dns_lost_pct: 'dnsmasq 0',
  dns_proccpu: 'dnsmasq 0.81',
};
const NORATIO = /(_retr|_lost_pct)$/;
const fmt = (v, d) => (v === null || !isFinite(v) ? '-' : v.toFixed(d));
const rows = [];
for (const [m, label, d] of METRICS) {
  const b = med('bridge', m), v = med('vsw', m);
  if (b === null && v === null) continue;
  const ratio = b !== null && v !== null && b !== 0 && !NORATIO.test(m) ? (v / b).toFixed(2) : '-';
  rows.push([label, fmt(b, d), fmt(v, d), ratio, ANCHORS[m] ?? '', m]);
}
const withAnchors = rows.some((r) => r[4] !== '');
// The issue's bar
const bar = [];
const b_tcp = med('bridge', 'tcp_def_gbps'), v_tcp = med('vsw', 'tcp_def_gbps');
if (b_tcp !== null && v_tcp !== null)
  bar.push([`TCP >= half the kernel bridge (${fmt(v_tcp, 2)} vs ${fmt(b_tcp / 2, 2)} Gbit/s)`, v_tcp >= b_tcp / 2]);
const b_fw = med('bridge', 'mac1_rx_kpps'), v_fw = med('vsw', 'mac1_rx_kpps');
if (b_fw !== null && v_fw !== null)
  bar.push([`forwarding >= kernel bridge (1 MAC rx ${fmt(v_fw, 0)} vs ${fmt(b_fw, 0)} kpps)`, v_fw >= b_fw]);
const v_sp = med('vsw', 'sockperf_avg_us');
if (v_sp !== null) bar.push([`sockperf latency < Open vSwitch's 66 us (${fmt(v_sp, 1)} us)`, v_sp < 66]);
const v_pg = med('vsw', 'ping_avg_ms');
if (v_pg !== null) bar.push([`ping avg < Open vSwitch's 0.216 ms (${fmt(v_pg, 3)} ms)`, v_pg < 0.216]);

// Routed tests: was it NAT, did both servers give the same four answers, did vsw lose queries?
const checks = [];
for (const c of ['def', 'off']) {
  const per = ['bridge', 'vsw'].map((row) => [row, vals.get(`${row}\tnat_tcp_${c}_masq`) ?? []]).filter(([, a]) => a.length);
  if (per.length) checks.push([`nat_tcp_${c}: the outside server saw only the uplink address: ${per.map(([row, a]) => `${row} ${a.filter((x) => x === 1).length}/${a.length} runs`).join(', ')}`,
    per.every(([, a]) => a.every((x) => x === 1))]);
}
const ans = ['bridge', 'vsw'].map((row) => [row, med(row, 'dns_answers')]).filter(([, n]) => n !== null);
if (ans.length) checks.push([`dns: addresses in the answer for svc: ${ans.map(([row, n]) => `${row} ${n}`).join(', ')}`, ans.every(([, n]) => n === 4)]);
const sumOf = (row, m) => (vals.get(`${row}\t${m}`) ?? []).reduce((a, b) => a + b, 0);
if (vals.has('vsw\tdns_answered'))
  checks.push([`dns: vsw answered ${sumOf('vsw', 'dns_answered')} queries locally; lost on the way to the DNS server (punt ring full) ${sumOf('vsw', 'dns_punt_lost')}, dropped by the server ${sumOf('vsw', 'dns_dropped')} (sums over runs)`,
    sumOf('vsw', 'dns_punt_lost') === 0 && sumOf('vsw', 'dns_dropped') === 0]);

const cond = fs.existsSync(path.join(dir, 'conditions.txt')) ? fs.readFileSync(path.join(dir, 'conditions.txt'), 'utf8').trim() : '';
const ncol = withAnchors ? 5 : 4;
const w = [0, 0, 0, 0, 0];
const head = ['metric (median)', 'bridge', 'vsw', 'vsw/bridge', 'peers (anchors)'];
for (const r of [head, ...rows]) r.slice(0, ncol).forEach((c, i) => { w[i] = Math.max(w[i], c.length); });
const line = (r) => r.slice(0, ncol).map((c, i) => (i === 0 || i === 4 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('   ').trimEnd();
let txt = `${cond}\n\n${line(head)}\n${w.slice(0, ncol).map((n) => '-'.repeat(n)).join('   ')}\n${rows.map(line).join('\n')}\n`;
if (bar.length) txt += `\nissue bar:\n${bar.map(([t, ok]) => `  ${ok ? 'PASS' : 'FAIL'}  ${t}`).join('\n')}\n`;
if (checks.length) txt += `\nrouted checks:\n${checks.map(([t, ok]) => `  ${ok ? 'ok  ' : 'FAIL'}  ${t}`).join('\n')}\n`;
// vsw drops by reason, per test (from `vsw stats` snapshots around each test; vsw.* = the
// L2 daemon, vswn.* = the routed one: each series is diffed on its own)
const drops = [];
const sum = (f) => { const out = {}; try {
  for (const p of JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')))
    for (const [r, n] of Object.entries(p.drops ?? {})) out[r] = (out[r] ?? 0) + n;
} catch { /* missing or broken snapshot */ } return out; };
for (const series of ['vsw', 'vswn']) {
  const re = new RegExp(`^${series}\\.stats\\.\\d+\\..+\\.json$`);
  const snaps = fs.readdirSync(dir).filter((f) => re.test(f)).sort();
  for (let i = 1; i < snaps.length; i++) {
    const a = sum(snaps[i - 1]), b = sum(snaps[i]);
    const d = Object.keys(b).map((r) => [r, b[r] - (a[r] ?? 0)]).filter(([, n]) => n > 0);
    if (d.length) drops.push(`  ${snaps[i].replace(/^vswn?\.stats\.\d+\.|\.json$/g, '')}: ${d.map(([r, n]) => `${r} ${n}`).join(', ')}`);
  }
}
const kd = TESTS.map(([t]) => [t, (vals.get(`vsw\t${t}_kdrops`) ?? []).reduce((a, b) => a + b, 0)]).filter(([, n]) => n > 0);
if (kd.length) drops.unshift(`  kernel, AF_PACKET receive queue full (not in vsw stats): ${kd.map(([t, n]) => `${t} ${n}`).join(', ')}`);
if (drops.length) txt += `\nvsw drops per test (sum over reps):\n${drops.join('\n')}\n`;
const notes = path.join(dir, 'notes.txt');
if (fs.existsSync(notes) && fs.statSync(notes).size > 0)
  txt += `\nnotes:\n${[...new Set(fs.readFileSync(notes, 'utf8').trim().split('\n'))].map((l) => `  ${l}`).join('\n')}\n`;
const reps = (/REPS=(\d+)/.exec(cond) ?? [])[1] ?? '?', secs = (/T=([\d.]+) s/.exec(cond) ?? [])[1] ?? '?';
let md = `| metric (median of ${reps} runs of ${secs} s) | kernel bridge | vsw | vsw/bridge |${withAnchors ? ' peers (anchors) |' : ''}\n|---|---:|---:|---:|${withAnchors ? '---|' : ''}\n`;
md += rows.map((r) => `| ${r[0]} | ${r[1]} | ${r[2]} | ${r[3]} |${withAnchors ? ` ${r[4]} |` : ''}`).join('\n') + '\n';
if (bar.length) md += `\n${bar.map(([t, ok]) => `- ${ok ? '**pass**' : '**fail**'}: ${t}`).join('\n')}\n`;
if (checks.length) md += `\n${checks.map(([t, ok]) => `- ${ok ? 'ok' : '**FAIL**'}: ${t}`).join('\n')}\n`;
fs.writeFileSync(path.join(dir, 'summary.txt'), txt);
fs.writeFileSync(path.join(dir, 'summary.md'), md);
const json = {}; for (const [k, a] of vals) { const [row, m] = k.split('\t'); (json[row] ??= {})[m] = { median: median(a), values: a }; }
fs.writeFileSync(path.join(dir, 'summary.json'), JSON.stringify({ conditions: cond, results: json, bar: bar.map(([t, ok]) => ({ test: t, pass: ok })),
  checks: checks.map(([t, ok]) => ({ check: t, ok })) }, null, 2) + '\n');
process.stdout.write(`${txt}\nmarkdown (for README):\n\n${md}`);
JS
}

# ------------------------------------------------------------ packages, build
ensure_pkgs(){
  local need=() c
  for c in iperf3:iperf3 trafgen:netsniff-ng sockperf:sockperf jq:jq bc:bc ethtool:ethtool ping:iputils-ping \
           flock:util-linux nsenter:util-linux ss:iproute2; do
    command -v "${c%%:*}" >/dev/null 2>&1 || need+=("${c#*:}")
  done
  if [ "$NEED_L3" = 1 ]; then   # bench-only tools of the routed tests
    for c in iptables:iptables dnsmasq:dnsmasq-base dnsperf:dnsperf dig:dnsutils; do
      command -v "${c%%:*}" >/dev/null 2>&1 || need+=("${c#*:}")
    done
  fi
  [ ${#need[@]} -eq 0 ] && return 0
  log "installing: ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >"$BASE/apt.log" 2>&1 \
    || { apt-get update >>"$BASE/apt.log" 2>&1
         DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >>"$BASE/apt.log" 2>&1; } \
    || { log "apt-get install failed (see $BASE/apt.log)"; exit 1; }
}
ensure_build(){
  if [ "${BUILD:-0}" = 1 ] || [ ! -f "$CLI" ] || [ ! -f "$REPO/build/Release/vswio.node" ] || [ ! -f "$REPO/dist/workers/worker.js" ]; then
    log "building vsw (npm run build)"
    (cd "$REPO" && npm run build >"$BASE/build.log" 2>&1) || { log "build failed: $(tail -5 "$BASE/build.log")"; return 1; }
  fi
}

# ------------------------------------------------------------ cleanup (only what this script made)
kill_pid(){ # kill_pid PID [SIGNAL] [WAIT_S]: signal, wait, then SIGKILL
  local p=$1 sig=${2:-TERM} w=${3:-2} i
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
  kill -"$sig" "$p" 2>/dev/null
  for i in $(seq $((w * 10))); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null; true
}
kill_pidfiles(){ local f; for f in "$@"; do [ -s "$f" ] || continue; kill_pid "$(cat "$f")"; rm -f "$f"; done; }
vsw(){ timeout 20 node "$CLI" --socket "${VSOCK:-$SOCK}" "$@"; }
vswn(){ VSOCK=$NSOCK vsw "$@"; }             # the L3 daemon
stop_vsw(){ # stop_vsw PIDFILE SOCKET CONTAINERS...
  local pf=$1 sock=$2 pid; shift 2; pid=$(cat "$pf" 2>/dev/null)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    VSOCK=$sock vsw rm -f "$@" >/dev/null 2>&1
    kill_pid "$pid" INT 10
  fi
  rm -f "$pf"
}
cleanup(){
  [ -d "$RUN" ] && { kill_pidfiles "$RUN"/srv-*.pid; stop_vsw "$RUN/vswd.pid" "$SOCK" vb-v1 vb-v2
                     stop_vsw "$RUN/vswnd.pid" "$NSOCK" vb-nv1 vb-nv2 vb-nv3 vb-nv4 vb-nv5; }
  local n p
  for n in $NSS; do
    [ -e "/etc/netns/$n" ] && rm -rf "/etc/netns/$n"   # resolv.conf/hosts vsw writes for its containers
    [ -e "/run/netns/$n" ] || continue
    for p in $(ip netns pids "$n" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done  # only inside our own vb-* namespaces
    ip netns del "$n" 2>/dev/null || rm -f "/run/netns/$n"
  done
  # our veths are created inside our namespaces and go with them; a host end left in the
  # machine's namespace (never expected) is ours by name only if it is a veth
  for n in $LINKS; do ip -d link show "$n" 2>/dev/null | grep -qw veth && ip link del "$n" 2>/dev/null; done
  rm -rf "$RUN"
}

# ------------------------------------------------------------ topology
ns_init(){ ip netns add "$1" && ip -n "$1" link set lo up &&
           nsx "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; }
start_servers(){ # iperf3 + sockperf servers in container 2 of row $1
  local ns; ns=$(ns2 "$1")
  nsx "$ns" iperf3 -s -D --pidfile "$RUN/srv-iperf-$1.pid" >/dev/null 2>&1
  nsx "$ns" sockperf sr -i 0.0.0.0 -p 11111 >"$RUN/sockperf-$1.log" 2>&1 & echo $! >"$RUN/srv-sockperf-$1.pid"
}
up_bridge(){
  ns_init vb-bh && ns_init vb-b1 && ns_init vb-b2 || return 1
  ip -n vb-bh link add vb-br type bridge && ip -n vb-bh link set vb-br up || return 1
  local i
  for i in 1 2; do
    ip link add "vb-bp$i" netns vb-bh type veth peer name eth0 netns "vb-b$i" || return 1
    ip -n "vb-b$i" link set eth0 address "02:42:0a:59:00:0$((i + 1))" mtu 1500
    ip -n "vb-b$i" addr add "10.89.0.$((i + 1))/24" dev eth0
    ip -n "vb-b$i" link set eth0 up
    ip -n vb-bh link set "vb-bp$i" master vb-br up
  done
  start_servers bridge
}
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
    VSOCK=$sock vsw network ls >/dev/null 2>&1 && break
    sleep 0.2
  done
  VSOCK=$sock vsw network ls >/dev/null 2>&1 || { note vsw "daemon $name did not answer within 20 s"; return 1; }
  DAEMON_PID=$pid
}
up_vsw(){
  ns_init vb-vh || return 1
  start_daemon vb-vh "$SOCK" vsw --default-subnet "$SUBNET" || return 1
  VSW_PID=$DAEMON_PID
  local i
  for i in 1 2; do
    vsw run -d --name "vb-v$i" -- sleep infinity >>"$RES/vsw-cli.log" 2>&1 \
      || { note vsw "vsw run vb-v$i failed: $(tail -1 "$RES/vsw-cli.log")"; return 1; }
    nsx "vb-v$i" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  done
  vsw network inspect bridge >"$RES/vsw-network.json" 2>>"$RES/vsw-cli.log"
  local a b; a=$(jq -r '.endpoints[] | select(.container=="vb-v1") | .ip' "$RES/vsw-network.json")
  b=$(jq -r '.endpoints[] | select(.container=="vb-v2") | .ip' "$RES/vsw-network.json")
  [ "$a" = "$IP1" ] && [ "$b" = "$IP2" ] || { note vsw "unexpected addresses: vb-v1=$a vb-v2=$b"; return 1; }
  start_servers vsw
}
ns1(){ [ "$1" = bridge ] && echo vb-b1 || echo vb-v1; }
ns2(){ [ "$1" = bridge ] && echo vb-b2 || echo vb-v2; }
pids_of(){ [ "$1" = vsw ] && echo "$VSW_PID" || echo -; }
offloads(){ local s=$1 row i; for row in $ROWS; do for i in 1 2; do
  local ns; [ $i = 1 ] && ns=$(ns1 "$row") || ns=$(ns2 "$row")
  nsx "$ns" ethtool -K eth0 tx "$s" tso "$s" gso "$s" >/dev/null 2>&1 || note "$row" "ethtool -K eth0 tx $s in $ns failed"
done; done; }
warm(){ local row=$1; nsx "$(ns1 "$row")" ping -c 3 -i 0.2 -W 1 "$IP2" >/dev/null 2>&1 || note "$row" "ping $IP2 failed before $2"; }

# ------------------------------------------------------------ routed topologies (L3_TESTS)
is_l3(){ case "$L3_TESTS" in *" $1 "*) return 0;; esac; return 1; }
outside_up(){ # outside_up HOSTNS HOSTEND OUTNS: the uplink veth and the outside server
  ns_init "$3" || return 1
  ip link add "$2" netns "$1" type veth peer name eth0 netns "$3" || return 1
  ip -n "$3" addr add "$OUT_IP/24" dev eth0 && ip -n "$3" link set eth0 up && ip -n "$1" link set "$2" up || return 1
  nsx "$3" iperf3 -s -D -B "$OUT_IP" --pidfile "$RUN/srv-iperf-$3.pid" >/dev/null 2>&1
}
dns_names(){ local i; for i in 3 4 5 6; do echo "10.89.1.$i svc"; done; }   # = vb-nv2..5's addresses
up_l3_bridge(){
  ns_init vb-nbh && ns_init vb-nb1 || return 1
  ip -n vb-nbh link add vb-nbr type bridge && ip -n vb-nbh addr add "$NGW/24" dev vb-nbr && ip -n vb-nbh link set vb-nbr up || return 1
  ip link add vb-nbp1 netns vb-nbh type veth peer name eth0 netns vb-nb1 || return 1
  ip -n vb-nb1 link set eth0 address 02:42:0a:59:01:02 mtu 1500
  ip -n vb-nb1 addr add "$NIP1/24" dev eth0 && ip -n vb-nb1 link set eth0 up && ip -n vb-nb1 route add default via "$NGW" || return 1
  ip -n vb-nbh link set vb-nbp1 master vb-nbr up || return 1
  outside_up vb-nbh vb-nbu vb-nbo || return 1
  ip -n vb-nbh addr add "$UPL_IP/24" dev vb-nbu && ip -n vb-nbh route add default via "$OUT_IP" || return 1
  # Docker's recipe, inside vb-nbh only (ip_forward and the nat table are per namespace)
  nsx vb-nbh sysctl -qw net.ipv4.ip_forward=1 || return 1
  nsx vb-nbh iptables -t nat -A POSTROUTING -s "$NSUBNET" ! -o vb-nbr -j MASQUERADE || return 1
  dns_names >"$RUN/dns-hosts"
  ip netns exec vb-nbh dnsmasq -C /dev/null -k --no-resolv --no-hosts --no-poll --bind-interfaces --listen-address="$NGW" \
    --port=53 --addn-hosts="$RUN/dns-hosts" --user=root --group=root --pid-file="$RUN/dnsmasq.pidfile" \
    >"$RES/dnsmasq.log" 2>&1 &
  echo $! >"$RUN/srv-dnsmasq.pid"; DNSMASQ_PID=$!
  sleep 0.5; [ "$(cat /proc/$DNSMASQ_PID/comm 2>/dev/null)" = dnsmasq ] || { note bridge "dnsmasq did not start: $(head -3 "$RES/dnsmasq.log")"; return 1; }
  nsx vb-nbh iptables -t nat -S >"$RES/bridge-iptables.txt" 2>&1
}
up_l3_vsw(){
  ns_init vb-nvh || return 1
  outside_up vb-nvh vb-nvu vb-nvo || return 1
  start_daemon vb-nvh "$NSOCK" vswn --default-subnet "$NSUBNET" --uplink vb-nvu --uplink-ip "$UPL_IP/24" \
    --uplink-gateway "$OUT_IP" --dns "$OUT_IP" --metrics "$NMETRICS" || return 1
  VSWN_PID=$DAEMON_PID
  local i alias
  for i in 1 2 3 4 5; do
    alias=(--alias svc); [ $i = 1 ] && alias=()
    vswn run -d --name "vb-nv$i" "${alias[@]}" -- sleep infinity >>"$RES/vswn-cli.log" 2>&1 \
      || { note vsw "vsw run vb-nv$i failed: $(tail -1 "$RES/vswn-cli.log")"; return 1; }
    nsx "vb-nv$i" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  done
  vswn network inspect bridge >"$RES/vswn-network.json" 2>>"$RES/vswn-cli.log"
  local got want="$NGW $NIP1 10.89.1.3 10.89.1.4 10.89.1.5 10.89.1.6"
  got="$(jq -r '.gateway' "$RES/vswn-network.json") $(for i in 1 2 3 4 5; do
    jq -r ".endpoints[] | select(.container==\"vb-nv$i\") | .ip" "$RES/vswn-network.json"; done | tr '\n' ' ')"
  [ "$(echo $got)" = "$want" ] || { note vsw "unexpected L3 addresses (gateway, vb-nv1..5): $got"; return 1; }
}
l3ns1(){ [ "$1" = bridge ] && echo vb-nb1 || echo vb-nv1; }
l3out(){ [ "$1" = bridge ] && echo vb-nbo || echo vb-nvo; }
l3pids(){ [ "$1" = vsw ] && echo "$VSWN_PID" || echo -; }
nat_offloads(){ local s=$1 row; for row in $ROWS_L3; do
  nsx "$(l3ns1 "$row")" ethtool -K eth0 tx "$s" tso "$s" gso "$s" >/dev/null 2>&1 || note "$row" "ethtool -K eth0 tx $s in $(l3ns1 "$row") failed"
done; }
l3warm(){ local row=$1 ns; ns=$(l3ns1 "$1")
  case $2 in
    dns) nsx "$ns" dig +short +time=2 +tries=2 @"$NGW" svc A >"$RES/$row.dns.answers.txt" 2>&1
         local n; n=$(grep -c '^10\.89\.1\.' "$RES/$row.dns.answers.txt")
         rec "$row" dns_answers 1 "$n"; [ "$n" = 4 ] || note "$row" "dig svc @$NGW gave $n addresses, not 4: $(head -3 "$RES/$row.dns.answers.txt" | tr '\n' ' ')";;
    *)   nsx "$ns" ping -c 3 -i 0.2 -W 1 "$OUT_IP" >/dev/null 2>&1 || note "$row" "ping $OUT_IP (through NAT) failed before $2";;
  esac; }

# ------------------------------------------------------------ measurements (one rep of one row)
timed(){ local out=$1 pids=$2; shift 2; flock "$LOCK" "$SELF" __timed "$out" "$pids" "$@"; }
rec(){ printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RES/raw.tsv"; }
note(){ printf '%s: %s\n' "$1" "$2" >>"$RES/notes.txt"; log "NOTE $1: $2"; }
cpuf(){ sed -n "s/.*$2=\([^ ]*\).*/\1/p" "$1.cpu"; }
rec_cpu(){ local row=$1 test=$2 r=$3 f=$4
  [ "$row" = vsw ] && rec "$row" "${test}_proccpu" "$r" "$(cpuf "$f" proc_cpu)"
  rec "$row" "${test}_syscpu" "$r" "$(cpuf "$f" sys_cpu)"; }
m_tcp(){ local row=$1 r=$2 cond=$3 f=$RES/$1.tcp_$3.$2.json
  timed "$f" "$(pids_of "$row")" timeout $((T + 20)) ip netns exec "$(ns1 "$row")" iperf3 -c "$IP2" -t "$T" -O 1 --connect-timeout 3000 -J
  if jq -e '.end.sum_received.bits_per_second' "$f" >/dev/null 2>&1; then
    rec "$row" "tcp_${cond}_gbps" "$r" "$(jq '.end.sum_received.bits_per_second/1e9' "$f")"
    rec "$row" "tcp_${cond}_retr" "$r" "$(jq '.end.sum_sent.retransmits // 0' "$f")"
  else rec "$row" "tcp_${cond}_gbps" "$r" 0; note "$row" "tcp_$cond rep $r: $(jq -r '.error // "no result"' "$f" 2>/dev/null | head -1)"; fi
  rec_cpu "$row" "tcp_$cond" "$r" "$f"; }
m_tcp_def(){ m_tcp "$1" "$2" def; }
m_tcp_off(){ m_tcp "$1" "$2" off; }
m_udp(){ local row=$1 r=$2 f=$RES/$1.udp.$2.json
  timed "$f" "$(pids_of "$row")" timeout $((T + 20)) ip netns exec "$(ns1 "$row")" iperf3 -c "$IP2" -u -l 64 -b 0 -t "$T" --connect-timeout 3000 -J
  if jq -e '.end.sum_received.bytes' "$f" >/dev/null 2>&1; then
    rec "$row" udp_rx_kpps "$r" "$(jq '.end.sum_received.bytes/64/.end.sum_received.seconds/1000' "$f")"
    rec "$row" udp_tx_kpps "$r" "$(jq '.end.sum_sent.bytes/64/.end.sum_sent.seconds/1000' "$f")"
    rec "$row" udp_loss_pct "$r" "$(jq '.end.sum_received.lost_percent' "$f")"
  else rec "$row" udp_rx_kpps "$r" 0; note "$row" "udp rep $r: $(jq -r '.error // "no result"' "$f" 2>/dev/null | head -1)"; fi
  rec_cpu "$row" udp "$r" "$f"; }
m_ping(){ local row=$1 r=$2 f=$RES/$1.ping.$2.txt v
  timed "$f" "$(pids_of "$row")" timeout 30 ip netns exec "$(ns1 "$row")" ping -c 200 -i 0.01 -W 1 "$IP2"
  v=$(sed -n 's|^rtt .* = [^/]*/\([^/]*\)/.*|\1|p' "$f")
  if [ -n "$v" ]; then rec "$row" ping_avg_ms "$r" "$v"; else note "$row" "ping rep $r: no reply"; fi
  v=$(sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p' "$f" | sort -g | awk '{a[NR]=$1} END{if (NR) print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
  [ -n "$v" ] && rec "$row" ping_p50_ms "$r" "$v"
  v=$(sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p' "$f"); [ -n "$v" ] && [ "$v" != 0 ] && note "$row" "ping rep $r: $v% loss"
  rec_cpu "$row" ping "$r" "$f"; }
m_sockperf(){ local row=$1 r=$2 f=$RES/$1.sockperf.$2.txt v
  timed "$f" "$(pids_of "$row")" timeout $((T + 20)) ip netns exec "$(ns1 "$row")" sockperf pp -i "$IP2" -p 11111 -t "$T"
  v=$(sed -n 's/.*Summary: Latency is \([0-9.]*\) usec.*/\1/p' "$f")
  if [ -n "$v" ]; then rec "$row" sockperf_avg_us "$r" "$v"; else note "$row" "sockperf rep $r: no result"; fi
  v=$(sed -n 's/.*percentile 99.000 = *\([0-9.]*\).*/\1/p' "$f"); [ -n "$v" ] && rec "$row" sockperf_p99_us "$r" "$v"
  rec_cpu "$row" sockperf "$r" "$f"; }
# trafgen config: 60-byte frames to c2's MAC from N source MACs 02:b0:00:00:xx:xx, EtherType 0x88b5
mac_cfg(){ local row=$1 n=$2 cfg=$RUN/trafgen-$1-$2.cfg d i
  d=$(ip -n "$(ns2 "$row")" -j link show eth0 | jq -r '.[0].address' | sed 's/^/0x/; s/:/,0x/g')
  : >"$cfg"; for i in $(seq 0 $((n - 1))); do
    printf '{ %s, 0x02,0xb0,0x00,0x00,0x%02x,0x%02x, 0x88,0xb5, fill(0x00, 46) }\n' "$d" $((i / 256)) $((i % 256)) >>"$cfg"; done
  echo "$cfg"; }
m_mac(){ local row=$1 r=$2 n=$3 f=$RES/$1.mac$3.$2.txt cfg
  cfg=$RUN/trafgen-$row-$n.cfg; [ -s "$cfg" ] || cfg=$(mac_cfg "$row" "$n")
  timed "$f" "$(pids_of "$row")" "$SELF" __trafgen "$(ns1 "$row")" "$(ns2 "$row")" "$cfg"
  if [ -s "$f" ]; then
    rec "$row" "mac${n}_tx_kpps" "$r" "$(awk '{print $1/1000}' "$f")"; rec "$row" "mac${n}_rx_kpps" "$r" "$(awk '{print $2/1000}' "$f")"
  else note "$row" "trafgen mac$n rep $r: no result"; fi
  rec_cpu "$row" "mac$n" "$r" "$f"; }
m_mac1(){ m_mac "$1" "$2" 1; }
m_mac1000(){ m_mac "$1" "$2" 1000; }

# TCP through masquerade: container -> gateway -> uplink -> $OUT_IP. Mid-run, `ss` in the
# outside namespace lists the peers of the iperf3 server: they must all be the uplink
# address (nat_*_masq = 1), never the container's own (then the figure is not a NAT one).
m_nat_tcp(){ local row=$1 r=$2 cond=$3 f=$RES/$1.nat_tcp_$3.$2.json sp peers
  ( sleep $((T / 2 + 1)); nsx "$(l3out "$row")" ss -Htn state established '( sport = :5201 )' ) >"$f.ss" 2>&1 & sp=$!
  timed "$f" "$(l3pids "$row")" timeout $((T + 20)) ip netns exec "$(l3ns1 "$row")" iperf3 -c "$OUT_IP" -t "$T" -O 1 --connect-timeout 3000 -J
  wait "$sp"
  if jq -e '.end.sum_received.bits_per_second' "$f" >/dev/null 2>&1; then
    rec "$row" "nat_tcp_${cond}_gbps" "$r" "$(jq '.end.sum_received.bits_per_second/1e9' "$f")"
    rec "$row" "nat_tcp_${cond}_retr" "$r" "$(jq '.end.sum_sent.retransmits // 0' "$f")"
  else rec "$row" "nat_tcp_${cond}_gbps" "$r" 0; note "$row" "nat_tcp_$cond rep $r: $(jq -r '.error // "no result"' "$f" 2>/dev/null | head -1)"; fi
  peers=$(awk '{print $4}' "$f.ss" | sed 's/:[0-9]*$//' | sort -u | tr '\n' ' '); peers=$(echo $peers)
  if [ "$peers" = "$UPL_IP" ]; then rec "$row" "nat_tcp_${cond}_masq" "$r" 1
  else rec "$row" "nat_tcp_${cond}_masq" "$r" 0; note "$row" "nat_tcp_$cond rep $r: the outside server's peers were '${peers:-none}', not $UPL_IP"; fi
  rec_cpu "$row" "nat_tcp_$cond" "$r" "$f"; }
m_nat_tcp_def(){ m_nat_tcp "$1" "$2" def; }
m_nat_tcp_off(){ m_nat_tcp "$1" "$2" off; }
# vsw's DNS counters (Prometheus, on the L3 daemon's loopback) -> "local punt_lost dropped"
dns_ctr(){ nsx vb-nvh curl -s --max-time 5 "http://$NMETRICS/metrics" 2>/dev/null | awk '
  /^vsw_dns_queries_total\{result="local"\}/ {l=$2} /^vsw_dns_queries_total\{result="dropped"\}/ {d=$2}
  /^vsw_dns_punt_lost_total / {p=$2} END {printf "%d %d %d\n", l, p, d}'; }
m_dns(){ local row=$1 r=$2 f=$RES/$1.dns.$2.txt pids v c0 c1
  pids=$(l3pids "$row"); [ "$row" = bridge ] && pids=$DNSMASQ_PID
  [ "$row" = vsw ] && c0=$(dns_ctr)
  # shellcheck disable=SC2086
  timed "$f" "$pids" timeout $((DNS_T + 30)) ip netns exec "$(l3ns1 "$row")" dnsperf -s "$NGW" -d "$RUN/dns-queries" -l "$DNS_T" $DNSPERF_OPTS
  v=$(sed -n 's/.*Queries per second: *\([0-9.]*\).*/\1/p' "$f")
  if [ -n "$v" ]; then
    rec "$row" dns_qps "$r" "$v"
    rec "$row" dns_lat_us "$r" "$(sed -n 's/.*Average Latency (s): *\([0-9.]*\).*/\1/p' "$f" | awk '{print $1 * 1e6}')"
    rec "$row" dns_lost_pct "$r" "$(sed -n 's/.*Queries lost: *[0-9]* (\([0-9.]*\)%).*/\1/p' "$f")"
    v=$(sed -n 's/.*Response codes: *\(.*\)$/\1/p' "$f"); case $v in "NOERROR "*"(100.00%)") ;; *) note "$row" "dns rep $r: response codes: ${v:-none}";; esac
  else rec "$row" dns_qps "$r" 0; note "$row" "dns rep $r: no result ($(head -2 "$f.err" | tr '\n' ' '))"; fi
  [ "$row" = bridge ] && rec bridge dns_proccpu "$r" "$(cpuf "$f" proc_cpu)"
  rec_cpu "$row" dns "$r" "$f"
  if [ "$row" = vsw ]; then c1=$(dns_ctr); echo "$c0 -> $c1" >"$f.vswdns"
    set -- $c0 $c1
    if [ $# = 6 ]; then rec vsw dns_answered "$r" $(( $4 - $1 )); rec vsw dns_punt_lost "$r" $(( $5 - $2 )); rec vsw dns_dropped "$r" $(( $6 - $3 ))
    else note vsw "dns rep $r: could not read the daemon's DNS counters ($c0 -> $c1)"; fi
  fi; }

# Frames the kernel dropped on vsw's AF_PACKET sockets (receive queue full, before vsw read
# them): the "d" of `ss -0 -m` summed over the daemon's packet sockets. vsw's own counters
# (`vsw stats`) do not see these.
sock_drops(){ nsx "${1:-vb-vh}" ss -0 -a -m -n 2>/dev/null | sed -n 's/.*skmem:(.*,d\([0-9]*\)).*/\1/p' | awk '{s+=$1} END{print s+0}'; }

SNAP=0
vsw_snapshot(){ # vsw_snapshot TEST [l2|l3]: per-port counters after a test (the summary prints drops per test)
  local g=${2:-l2}; is_l3 "$1" && g=l3
  if [ "$g" = l3 ]; then
    case " $ROWS_L3 " in *" vsw "*) ;; *) return 0;; esac
    SNAP=$((SNAP + 1)); vswn stats --format json >"$RES/vswn.stats.$(printf %02d $SNAP).$1.json" 2>/dev/null
  else
    case " $ROWS " in *" vsw "*) ;; *) return 0;; esac
    SNAP=$((SNAP + 1)); vsw stats --format json >"$RES/vsw.stats.$(printf %02d $SNAP).$1.json" 2>/dev/null
  fi; }

run_test(){ local t=$1 r i row order d0 rows=$ROWS hns=vb-vh
  is_l3 "$t" && { rows=$ROWS_L3; hns=vb-nvh; }
  [ -n "$rows" ] || { log "$t: no row set up for it"; return 0; }
  log "$t (REPS=$REPS, T=$T s)"
  case $t in
    tcp_def) offloads on;;
    tcp_off) offloads off;;
    nat_tcp_def) nat_offloads on;;
    nat_tcp_off) nat_offloads off;;
  esac
  for row in $rows; do if is_l3 "$t"; then l3warm "$row" "$t"; else warm "$row" "$t"; fi; done
  for r in $(seq "$REPS"); do
    order=$rows; [ $((r % 2)) = 0 ] && order=$(echo "$rows" | tr ' ' '\n' | tac | tr '\n' ' ')
    for row in $order; do
      if [ "$row" = vsw ]; then
        d0=$(sock_drops $hns); "m_$t" "$row" "$r"; rec vsw "${t}_kdrops" "$r" $(( $(sock_drops $hns) - d0 ))
      else "m_$t" "$row" "$r"; fi
    done
  done
  case $t in
    mac1000)
      case " $ROWS " in *" bridge "*) rec bridge fdb_entries 1 "$(bridge -n vb-bh fdb show br vb-br | grep -vc permanent)";; esac
      case " $ROWS " in *" vsw "*) rec vsw fdb_entries 1 "$(vsw fdb --format json 2>/dev/null | jq length)";; esac;;
  esac
  case $t in nat_tcp_*) case " $ROWS_L3 " in *" vsw "*) vswn conntrack >"$RES/vswn.conntrack.$t.txt" 2>&1;; esac;; esac
  sleep 1.2   # vsw reads the kernel's per-socket drop counters once a second: let this test's arrive
  vsw_snapshot "$t"
}

# ------------------------------------------------------------ taps (issue #5): what capture and live trace cost
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
TAPS_CONDS=${TAPS_CONDS:-"a1 b c d e a2"}   # env: a subset, e.g. "a1 c d a2"
TAP_PID=; TAP_WC=
taps_ticks(){ awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
taps_port(){ # taps_port CONTAINER -> "rxPackets rxBytes txPackets txBytes" of its port
  vsw stats --format json 2>/dev/null | jq -r --arg c "$1" \
    '[.[] | select(.container == $c)][0] // {} | "\(.rxPackets // 0) \(.rxBytes // 0) \(.txPackets // 0) \(.txBytes // 0)"'; }
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
    grep -q '^vsw: \(capturing\|tracing\)' "$out.tap" 2>/dev/null && return 0
    kill -0 "$TAP_PID" 2>/dev/null || break
    sleep 0.1
  done
  note vsw "taps $c: the tap did not start: $(head -2 "$out.tap" 2>/dev/null | tr '\n' ' ')"; tap_stop; return 1; }
tap_stop(){ local i
  [ -n "$TAP_PID" ] && { kill_pid "$TAP_PID" INT 5; wait "$TAP_PID" 2>/dev/null; }
  if [ -n "$TAP_WC" ]; then   # the trace's reader ends when the CLI closes the fifo
    for i in $(seq 50); do kill -0 "$TAP_WC" 2>/dev/null || break; sleep 0.1; done
    kill_pid "$TAP_WC"; wait "$TAP_WC" 2>/dev/null
  fi
  rm -f "$RUN/srv-tap.pid" "$RUN/srv-tapwc.pid" "$RUN/tap.fifo"; TAP_PID=; TAP_WC=; }
# taps_one ROW R COND: mac1 and TCP in condition COND (bridge row: COND=ref, no tap)
taps_one(){ local row=$1 r=$2 c=$3 k f out cfg p0 p1 t0 t1 wall got tap
  for k in mac1 tcp; do
    f=$RES/$row.taps_$c.$k.$r; out=$f.txt; [ "$k" = tcp ] && out=$f.json
    echo "$(date +%T) $row rep $r $c $k load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RES/taps-load.txt"
    tap=; case $c in b|c) tap=vb-v2;; d|e) tap=vb-v1;; esac
    [ -n "$tap" ] && p0=$(taps_port "$tap")
    tap_start "$c" "$f" || continue
    t0=0; [ -n "$TAP_PID" ] && t0=$(taps_ticks "$TAP_PID")
    if [ "$k" = mac1 ]; then
      cfg=$RUN/trafgen-$row-1.cfg; [ -s "$cfg" ] || cfg=$(mac_cfg "$row" 1)
      timed "$out" "$(pids_of "$row")" "$SELF" __trafgen "$(ns1 "$row")" "$(ns2 "$row")" "$cfg"
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
    [ "$row" = vsw ] && rec vsw "taps_${c}_${k}_proccpu" "$r" "$(cpuf "$out" proc_cpu)"
    rec "$row" "taps_${c}_${k}_syscpu" "$r" "$(cpuf "$out" sys_cpu)"
    [ "$row" = vsw ] && rec vsw "taps_${c}_${k}_rss_mb" "$r" "$(awk '/^VmRSS/{print $2/1024}' "/proc/$VSW_PID/status" 2>/dev/null)"
    [ -n "$tap" ] || continue
    wall=$(cpuf "$out" wall); t1=$(taps_ticks "$TAP_PID")
    rec vsw "taps_${c}_${k}_tapcpu" "$r" "$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v w="$wall" 'BEGIN{if (w > 0) printf "%.3f", t/hz/w}')"
    sleep 0.5                                   # the daemon drains the rings every 20 ms: let the last records out
    p1=$(taps_port "$tap")
    tap_stop
    # shellcheck disable=SC2086
    set -- $p0 $p1
    [ $# = 8 ] || { note vsw "taps $c $k rep $r: no port counters for $tap ($p0 -> $p1)"; continue; }
    case $c in
      b|c) # frames (both directions) and their pcap size: 16-byte record header + frame
        got=$(sed -n 's/.*(\([0-9]*\) bytes of frames).*/\1/p' "$f.tap" | tail -1)
        rec vsw "taps_${c}_${k}_frames" "$r" $(( $5 - $1 + $7 - $3 ))
        rec vsw "taps_${c}_${k}_pcap_want" "$r" $(( $6 - $2 + $8 - $4 + 16 * ($5 - $1 + $7 - $3) ))
        if [ -n "$got" ]; then rec vsw "taps_${c}_${k}_pcap_got" "$r" "$got"
        else note vsw "taps $c $k rep $r: no closing message from the capture: $(tail -1 "$f.tap" 2>/dev/null)"; fi;;
      d|e) # frames received on c1 and the traces of them
        rec vsw "taps_${c}_${k}_frames" "$r" $(( $5 - $1 ))
        got=$(tr -d ' ' <"$f.lines" 2>/dev/null)
        if [ -n "$got" ]; then rec vsw "taps_${c}_${k}_traces" "$r" "$got"; else note vsw "taps $c $k rep $r: no trace count"; fi;;
    esac
  done; }
m_taps(){ local row=$1 r=$2 c conds=$TAPS_CONDS
  offloads on                                   # default offloads, as tcp_def (trafgen's raw frames do not care)
  if [ "$row" = bridge ]; then taps_one bridge "$r" ref; return; fi
  [ $((r % 2)) = 0 ] && conds=$(echo $conds | tr ' ' '\n' | tac | tr '\n' ' ')
  for c in $conds; do taps_one vsw "$r" "$c"; done; }
# taps_summary DIR: the table of the taps test (taps.txt, taps.md in DIR; stdout)
taps_summary(){ node - "$1" <<'JS'
const fs = require('fs'), path = require('path');
const dir = process.argv[2];
const vals = new Map();   // "row\tmetric" -> Map(rep -> number)
for (const line of fs.readFileSync(path.join(dir, 'raw.tsv'), 'utf8').split('\n')) {
  const [row, m, rep, v] = line.split('\t');
  if (!m || !m.startsWith('taps_') || v === undefined || v === '' || !isFinite(Number(v))) continue;
  const k = `${row}\t${m}`;
  if (!vals.has(k)) vals.set(k, new Map());
  vals.get(k).set(rep, Number(v));
}
const median = (a) => { const s = [...a].sort((x, y) => x - y), n = s.length;
  return n === 0 ? null : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const get = (row, m) => vals.get(`${row}\t${m}`) ?? new Map();
const med = (row, m) => median([...get(row, m).values()]);
const sum = (row, m) => [...get(row, m).values()].reduce((a, b) => a + b, 0);
// ratio to (a): the median of the per-rep ratios, each rep's condition over the same rep's (a):
// the mean of its two (a) runs (a1, a2: they bracket the other conditions), or a1 alone
const base = (m) => { const a1 = get('vsw', `taps_a1_${m}`), a2 = get('vsw', `taps_a2_${m}`), b = new Map();
  for (const [r, v] of a1) b.set(r, a2.has(r) ? (v + a2.get(r)) / 2 : v); return b; };
const ratio = (c, m) => { const a = base(m), x = get('vsw', `taps_${c}_${m}`);
  return median([...x].filter(([r]) => a.get(r) > 0).map(([r, v]) => v / a.get(r))); };
// the noise: (a) again over (a), per rep
const noise = (m) => { const a1 = get('vsw', `taps_a1_${m}`), a2 = get('vsw', `taps_a2_${m}`);
  return [...a2].filter(([r]) => a1.get(r) > 0).map(([r, v]) => f(v / a1.get(r), 2)).join(' '); };
const f = (v, d) => (v === null || !isFinite(v) ? '-' : v.toFixed(d));
const spread = (row, m, d) => { const a = [...get(row, m).values()]; return a.length > 1 ? ` (${f(Math.min(...a), d)}-${f(Math.max(...a), d)})` : ''; };
const LABEL = { ref: 'kernel bridge (reference, same run)', a1: '(a) vsw, no tap session', b: '(b) capture --port c2 -w /dev/null (every frame)',
  c: "(c) capture --port c2 --filter 'tcp port 9' (matches nothing)", d: "(d) trace --port c1 --filter 'udp port 9' (matches nothing)",
  e: '(e) trace --port c1 --format json (every frame)', a2: '(a) again, no tap session' };
const tapLost = (c, k) => {
  if (c === 'b' || c === 'c') {
    const want = sum('vsw', `taps_${c}_${k}_pcap_want`), got = sum('vsw', `taps_${c}_${k}_pcap_got`), frames = sum('vsw', `taps_${c}_${k}_frames`);
    if (!get('vsw', `taps_${c}_${k}_pcap_got`).size) return '-';
    if (c === 'c') return `${got} B written (of ${frames} frames)`;
    const share = want > 0 ? 1 - got / want : 0;
    // 60-byte frames: a pcap record is 76 bytes, so frames lost = frames - written / 76
    return k === 'mac1' ? `${Math.max(0, frames - Math.round(got / 76))} of ${frames} frames (${f(100 * share, 1)} %)`
      : `${f(100 * share, 1)} % of the bytes (${frames} frames)`;
  }
  if (c === 'd' || c === 'e') {
    if (!get('vsw', `taps_${c}_${k}_traces`).size) return '-';
    const frames = sum('vsw', `taps_${c}_${k}_frames`), tr = sum('vsw', `taps_${c}_${k}_traces`);
    return c === 'd' ? `${tr} traces (of ${frames} frames)` : `${Math.max(0, frames - tr)} of ${frames} frames (${f(frames ? 100 * (1 - tr / frames) : 0, 1)} %)`;
  }
  return '';
};
const conds = ['ref', 'a1', 'b', 'c', 'd', 'e', 'a2'].filter((c) => get(c === 'ref' ? 'bridge' : 'vsw', `taps_${c}_mac1`).size || get(c === 'ref' ? 'bridge' : 'vsw', `taps_${c}_tcp`).size);
const head = ['condition', 'fwd rx kpps', '/ (a)', 'daemon CPU', 'tap CLI CPU', 'tap lost (sum over reps)',
  'TCP Gbit/s', '/ (a)', 'retr', 'daemon CPU', 'tap CLI CPU', 'tap lost (sum over reps)'];
const rows = conds.map((c) => {
  const row = c === 'ref' ? 'bridge' : 'vsw';
  const ref = c === 'ref';
  return [LABEL[c],
    f(med(row, `taps_${c}_mac1`), 0) + spread(row, `taps_${c}_mac1`, 0), ref ? '-' : f(ratio(c, 'mac1'), 3),
    ref ? '-' : f(med(row, `taps_${c}_mac1_proccpu`), 2), f(med(row, `taps_${c}_mac1_tapcpu`), 2), tapLost(c, 'mac1'),
    f(med(row, `taps_${c}_tcp`), 2) + spread(row, `taps_${c}_tcp`, 2), ref ? '-' : f(ratio(c, 'tcp'), 3), f(med(row, `taps_${c}_tcp_retr`), 0),
    ref ? '-' : f(med(row, `taps_${c}_tcp_proccpu`), 2), f(med(row, `taps_${c}_tcp_tapcpu`), 2), tapLost(c, 'tcp')];
});
const cond = fs.existsSync(path.join(dir, 'conditions.txt')) ? fs.readFileSync(path.join(dir, 'conditions.txt'), 'utf8').trim() : '';
const reps = (/REPS=(\d+)/.exec(cond) ?? [])[1] ?? '?', secs = (/T=([\d.]+) s/.exec(cond) ?? [])[1] ?? '?';
const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r) => r.map((c, i) => (i === 0 || i === 5 || i === 11 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ').trimEnd();
let txt = `taps: median of ${reps} reps of ${secs} s (min-max); "/ (a)" = median of the per-rep ratios to the same rep's (a) (the mean of its two (a) runs)\n\n`;
txt += `${line(head)}\n${w.map((n) => '-'.repeat(n)).join('  ')}\n${rows.map(line).join('\n')}\n`;
if (conds.includes('a2')) txt += `\nnoise, (a) again / (a) per rep: forwarding ${noise('mac1')}; TCP ${noise('tcp')}\n`;
const rss = conds.filter((c) => c !== 'ref').map((c) => `${c} ${f(Math.max(...[...get('vsw', `taps_${c}_tcp_rss_mb`).values(), ...get('vsw', `taps_${c}_mac1_rss_mb`).values()]), 0)}`);
txt += `vsw daemon RSS after each condition, max over reps (MB): ${rss.join(', ')}\n`;
const sys = conds.map((c) => `${c} ${f(med(c === 'ref' ? 'bridge' : 'vsw', `taps_${c}_mac1_syscpu`), 2)}/${f(med(c === 'ref' ? 'bridge' : 'vsw', `taps_${c}_tcp_syscpu`), 2)}`);
txt += `system CPU (cores of ${require('os').cpus().length}), fwd/TCP: ${sys.join(', ')}\n`;
const loadf = path.join(dir, 'taps-load.txt');
if (fs.existsSync(loadf)) {
  const l1 = fs.readFileSync(loadf, 'utf8').trim().split('\n').map((l) => Number((/load (\S+)/.exec(l) ?? [])[1])).filter(isFinite);
  if (l1.length) txt += `load average (1 min) before each measurement: ${f(Math.min(...l1), 2)}-${f(Math.max(...l1), 2)}, median ${f(median(l1), 2)}\n`;
}
let md = `| condition (median of ${reps} x ${secs} s) | forwarding rx kpps | / (a) | daemon CPU | tap CLI CPU | tap lost | TCP Gbit/s | / (a) | daemon CPU | tap CLI CPU | tap lost |\n`;
md += '|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---|\n';
md += rows.map((r) => `| ${[r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[9], r[10], r[11]].join(' | ')} |`).join('\n') + '\n';
fs.writeFileSync(path.join(dir, 'taps.txt'), txt);
fs.writeFileSync(path.join(dir, 'taps.md'), md);
process.stdout.write(`${txt}\nmarkdown:\n\n${md}`);
JS
}

# ------------------------------------------------------------ main
case "${1:-run}" in
  cleanup) cleanup; exit 0;;
  summary) [ -n "${2:-}" ] || { echo "usage: $0 summary RESULTDIR"; exit 2; }; summary "$2"; grep -q "$(printf '\t')taps_" "$2/raw.tsv" 2>/dev/null && { echo; taps_summary "$2"; }; exit 0;;
  run) ;;
  *) echo "usage: $0 [run|cleanup|summary RESULTDIR]"; exit 2;;
esac
[ "$(id -u)" = 0 ] || { echo "e2e.sh: must run as root (namespaces, veths)" >&2; exit 1; }
mkdir -p "$BASE"
exec 9>"$BASE/e2e.lock"
flock -n 9 || { echo "e2e.sh: another run holds $BASE/e2e.lock" >&2; exit 1; }
NEED_L2=0; NEED_L3=0
for t in $TESTS; do
  case " tcp_def tcp_off udp ping sockperf mac1 mac1000 taps $L3_TESTS " in *" $t "*) ;; *) echo "e2e.sh: unknown test $t" >&2; exit 2;; esac
  if is_l3 "$t"; then NEED_L3=1; else NEED_L2=1; fi
done
ensure_pkgs
cleanup                                          # leftovers of a killed run (our vb-* names only)
RES=$RESULTS/$(date +%Y%m%d-%H%M%S)
mkdir -p "$RES" "$RUN"; : >"$RES/raw.tsv"; : >"$RES/notes.txt"
ln -sfn "$(basename "$RES")" "$RESULTS/latest"
trap 'cleanup' EXIT; trap 'exit 130' INT TERM
VSW_PID=; VSWN_PID=; DNSMASQ_PID=
export REPS T

{ echo "$(date -Is) kernel $(uname -r), $(nproc) CPUs, node $(node --version); T=$T s per run (+1 s iperf3 -O 1 for TCP), REPS=$REPS (medians); MTU 1500, IPv6 off"
  echo "vsw $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null)$(cd "$REPO" && [ -n "$(git status --porcelain -- control dataplane workers native 2>/dev/null)" ] && echo ' (+ uncommitted changes)'), --workers $WORKERS; iperf3 $(iperf3 --version | head -1 | awk '{print $2}'), tcp_congestion_control=$(sysctl -n net.ipv4.tcp_congestion_control)"
  [ "$NEED_L2" = 1 ] && echo "tests after tcp_off run with offloads off in the containers (as in peers.sh); trafgen -P 1, 60-byte frames"
  [ "$NEED_L3" = 1 ] && echo "routed: kernel = bridge + iptables MASQUERADE ($(iptables --version | awk '{print $2, $3}')) + dnsmasq $(dnsmasq --version | head -1 | awk '{print $3}'); vsw = second daemon with --uplink; nat_tcp_off: offloads off in the client container; dnsperf $(dnsperf -h 2>&1 | sed -n 's/^Version //p') -l $DNS_T $DNSPERF_OPTS, query 'svc A' (4 addresses)"
  echo "load avg at start: $(cut -d' ' -f1-3 /proc/loadavg); busiest processes: $(ps -eo pcpu=,comm= --sort=-pcpu | head -4 | awk '{printf "%s%s %s%%", (NR>1?", ":""), $2, $1}')"; } >"$RES/conditions.txt"
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
ROWS=$(echo $ROWS_OK); ROWS_L3=$(echo $ROWS_L3)
[ -n "$ROWS$ROWS_L3" ] || { log "no row could be set up"; exit 1; }
case " $ROWS " in *" bridge "*) echo "bridge: br_netfilter bridge-nf-call-iptables=$(nsx vb-bh sysctl -n net.bridge.bridge-nf-call-iptables 2>/dev/null || echo n/a) in vb-bh" >>"$RES/conditions.txt";; esac
echo "dist built $(date -u -r "$CLI" +%FT%TZ); sources newer than their dist/*.js: $(cd "$REPO" && n=0; for f in $(git ls-files control dataplane workers | grep '\.ts$'); do [ "$f" -nt "dist/${f%.ts}.js" ] && n=$((n + 1)); done; echo $n) (BUILD=1 rebuilds first)" >>"$RES/conditions.txt"
case " $ROWS_L3 " in *" bridge "*) echo "bridge (routed): br_netfilter bridge-nf-call-iptables=$(nsx vb-nbh sysctl -n net.bridge.bridge-nf-call-iptables 2>/dev/null || echo n/a) in vb-nbh" >>"$RES/conditions.txt";; esac
vsw_snapshot start l2
vsw_snapshot start l3
# idle cost of the daemons (both run during every test when L2 and routed tests are mixed)
ticks(){ local s=0 p v; for p in "$@"; do v=$(awk '{print $14+$15}' /proc/$p/stat 2>/dev/null) && s=$((s + v)); done; echo $s; }
i0=$(ticks $VSW_PID $VSWN_PID); sleep 2; i1=$(ticks $VSW_PID $VSWN_PID)
echo "idle vsw daemons ($(echo ${VSW_PID:+L2} ${VSWN_PID:+routed})): $(awk -v t=$((i1 - i0)) -v hz="$HZ" 'BEGIN{printf "%.3f", t/hz/2}') cores in all over 2 s before the tests" >>"$RES/conditions.txt"
T_START=$(date +%s)
for t in $TESTS; do run_test "$t"; done
log "tests took $(( $(date +%s) - T_START )) s"
echo "load avg at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RES/conditions.txt"
cleanup; trap - EXIT
echo
summary "$RES"
case " $TESTS " in *" taps "*) echo; taps_summary "$RES";; esac
echo
echo "raw results: $RES"
# A row that could not be set up is a failed run, even though the other rows were measured.
[ -z "$FAILED" ] || exit 1
