# l2.sh -- e2e.sh's switched tests and the L2 topology they share with forwarding.sh and
# taps.sh (sourced by e2e.sh, after lib.sh; never run on its own).
#
# Same topology for both rows: a "host" namespace holding the switch, two container
# namespaces with a veth pair each (eth0 inside, MTU 1500, IPv6 off), addresses
# 10.89.0.2 -> 10.89.0.3.
#   bridge  vb-bh (Linux bridge vb-br) + vb-b1, vb-b2 (made here)
#   vsw     vb-vh (the vsw daemon, entered with nsenter) + vb-v1, vb-v2 (made by the daemon:
#           `vsw run -d --network vb-l2 --name vb-vN -- sleep infinity`) on network vb-l2,
#           made with `--port-security $PORT_SECURITY` (default off: the forwarding tests send
#           from made-up MACs, 1 to 10000 of them, which a guarded port drops by design as
#           spoofed-source, and the kernel bridge checks no source either; PORT_SECURITY=on
#           measures the guard); the daemon's default network gets an unused subnet
# Container 2 of each row runs an iperf3 server and a sockperf server.
#
# Tests (methods from /work/shared/anchors/peers.sh, so the figures compare with its anchors):
#   tcp_def   iperf3 TCP c1 -> c2, default offloads, T s (+1 s -O 1)     Gbit/s, retransmits
#   tcp_off   iperf3 TCP, `ethtool -K eth0 tx off tso off gso off` in both containers
#             (offloads stay off for the tests after it, like peers.sh)
#   udp       iperf3 -u -l 64 -b 0                                       rx and tx kpps, loss %
#   ping      200 pings at 10 ms                                         avg and median ms
#   sockperf  ping-pong, T s                                             avg / p99 us
# Every run also records the vsw daemon's CPU and the system's (lib.sh: timed, rec_cpu).

L2_TESTS="tcp_def tcp_off udp ping sockperf"
L2_NSS="vb-b1 vb-b2 vb-bh vb-v1 vb-v2 vb-vh"   # every namespace of the L2 topology
L2_LINKS="vb-bp1 vb-bp2"                      # host ends of its veths (made inside vb-bh)
SOCK=$RUN/vsw.sock
SUBNET=10.89.0.0/24
PORT_SECURITY=${PORT_SECURITY:-off}
# l2_net CLI: network vb-l2 ($SUBNET, --port-security $PORT_SECURITY) on the daemon that CLI (a function) talks to
l2_net(){ "$1" network create --subnet "${2:-$SUBNET}" --port-security "$PORT_SECURITY" vb-l2 >>"$RES/vsw-cli.log" 2>&1 \
  || { note vsw "vsw network create vb-l2 failed: $(tail -1 "$RES/vsw-cli.log")"; return 1; }; }
IP1=10.89.0.2
IP2=10.89.0.3

vsw(){ vsw_at "$SOCK" "$@"; }                 # the L2 daemon's CLI

# ------------------------------------------------------------ topology
start_servers(){ # iperf3 + sockperf servers in container 2 of row $1
  local ns; ns=$(ns2 "$1")
  nsx "$ns" iperf3 -s -D --pidfile "$RUN/srv-iperf-$1.pid" >/dev/null 2>&1 || { note "$1" "iperf3 server did not start in $ns"; return 1; }
  nsx "$ns" sockperf sr -i 0.0.0.0 -p 11111 >"$RUN/sockperf-$1.log" 2>&1 & echo $! >"$RUN/srv-sockperf-$1.pid"
}
up_bridge(){
  ns_init vb-bh && ns_init vb-b1 && ns_init vb-b2 || return 1
  ip -n vb-bh link add vb-br type bridge && ip -n vb-bh link set vb-br up || return 1
  local i
  for i in 1 2; do
    ip link add "vb-bp$i" netns vb-bh type veth peer name eth0 netns "vb-b$i" &&
    ip -n "vb-b$i" link set eth0 address "02:42:0a:59:00:0$((i + 1))" mtu 1500 &&
    ip -n "vb-b$i" addr add "10.89.0.$((i + 1))/24" dev eth0 &&
    ip -n "vb-b$i" link set eth0 up &&
    ip -n vb-bh link set "vb-bp$i" master vb-br up || return 1
  done
  start_servers bridge
}
up_vsw(){
  ns_init vb-vh || return 1
  # shellcheck disable=SC2086
  start_daemon vb-vh "$SOCK" vsw --default-subnet 10.89.9.0/24 ${VSW_ARGS:-} || return 1   # VSW_ARGS: e2e.sh
  VSW_PID=$DAEMON_PID
  l2_net vsw || return 1
  local i a b
  for i in 1 2; do
    vsw run -d --network vb-l2 --name "vb-v$i" -- sleep infinity >>"$RES/vsw-cli.log" 2>&1 \
      || { note vsw "vsw run vb-v$i failed: $(tail -1 "$RES/vsw-cli.log")"; return 1; }
    nsx "vb-v$i" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 || return 1
  done
  vsw network inspect vb-l2 >"$RES/vsw-network.json" 2>>"$RES/vsw-cli.log" || { note vsw "vsw network inspect vb-l2 failed"; return 1; }
  a=$(jq -r '.endpoints[] | select(.container=="vb-v1") | .ip' "$RES/vsw-network.json")
  b=$(jq -r '.endpoints[] | select(.container=="vb-v2") | .ip' "$RES/vsw-network.json")
  [ "$a" = "$IP1" ] && [ "$b" = "$IP2" ] || { note vsw "unexpected addresses: vb-v1=$a vb-v2=$b"; return 1; }
  start_servers vsw
}
ns1(){ [ "$1" = bridge ] && echo vb-b1 || echo vb-v1; }
ns2(){ [ "$1" = bridge ] && echo vb-b2 || echo vb-v2; }
pids_of(){ [ "$1" = vsw ] && echo "$VSW_PID" || echo -; }
offloads(){ # offloads on|off: tx, tso and gso of eth0 in both containers of every L2 row
  local s=$1 row ns
  for row in $ROWS; do for ns in "$(ns1 "$row")" "$(ns2 "$row")"; do
    nsx "$ns" ethtool -K eth0 tx "$s" tso "$s" gso "$s" >/dev/null 2>&1 || note "$row" "ethtool -K eth0 tx $s in $ns failed"
  done; done; }
warm(){ local row=$1; nsx "$(ns1 "$row")" ping -c 3 -i 0.2 -W 1 "$IP2" >/dev/null 2>&1 || note "$row" "ping $IP2 failed before $2"; }

# ------------------------------------------------------------ measurements (one rep of one row)
pre_tcp_def(){ offloads on; }
pre_tcp_off(){ offloads off; }
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
  if [ -n "$v" ]; then rec "$row" ping_p50_ms "$r" "$v"; fi
  v=$(sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p' "$f")
  if [ -n "$v" ] && [ "$v" != 0 ]; then note "$row" "ping rep $r: $v% loss"; fi
  rec_cpu "$row" ping "$r" "$f"; }
m_sockperf(){ local row=$1 r=$2 f=$RES/$1.sockperf.$2.txt v
  timed "$f" "$(pids_of "$row")" timeout $((T + 20)) ip netns exec "$(ns1 "$row")" sockperf pp -i "$IP2" -p 11111 -t "$T"
  v=$(sed -n 's/.*Summary: Latency is \([0-9.]*\) usec.*/\1/p' "$f")
  if [ -n "$v" ]; then rec "$row" sockperf_avg_us "$r" "$v"; else note "$row" "sockperf rep $r: no result"; fi
  v=$(sed -n 's/.*percentile 99.000 = *\([0-9.]*\).*/\1/p' "$f")
  if [ -n "$v" ]; then rec "$row" sockperf_p99_us "$r" "$v"; fi
  rec_cpu "$row" sockperf "$r" "$f"; }
