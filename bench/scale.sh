# scale.sh -- e2e.sh's scale tests: how vsw grows next to the kernel, in the same run (sourced
# by e2e.sh after lib.sh, l2.sh, forwarding.sh, l3.sh and taps.sh; never run on its own).
# `bash bench/e2e.sh --scale-only [--quick]` runs only these, `--scale` adds them to the
# others; their figures are the "scaling" chart. What limits each one: docs/PERF.md.
#
# On l2.sh's topology (the network grows; both rows alike):
#   scale_pairs2 scale_pairs8 scale_pairs32
#             N containers on the one network (vb-b1..N / vb-v1..N, made up to N before
#             the test, 10.89.0.2 ...), N/2 pairs at once, container i -> i+N/2:
#             (1) trafgen 60-byte frames (the sender's own MAC to its partner's, EtherType
#             0x88b5, `trafgen -P 1` in every sender), T s: rx kpps = the receivers' eth0
#             rx packets / wall, summed; (2) iperf3 TCP, default offloads, every pair at
#             once, T s (+1 s -O 1): Gbit/s received, summed
#   mac10000  forwarding.sh's mac test with 10000 source MACs (mac1 and mac1000 are its own);
#             after it, the MAC table's size (vsw caps one port at --fdb-max-per-port, 4096)
#   scale_w1  (1) and (2) with 2 containers on a second vsw daemon with --workers 1 (vb-wh,
#             vb-w1, vb-w2; made before the test); its 2-worker counterpart is scale_pairs2
# On l3.sh's topology:
#   scale_nat10 scale_nat10000
#             trafgen UDP 60-byte frames from the client container to the outside server
#             through masquerade (to the gateway's MAC, 10.89.1.2 -> 198.51.100.1:9), N
#             source ports round robin = N concurrent flows, T s: rx kpps at the outside
#             namespace's eth0; after it, the connection table's size (vsw conntrack /
#             the kernel's nf_conntrack_count in vb-nbh)
#   scale_dns1 scale_dns10000
#             dnsperf as in dns, after registering 1 name (n0: vsw `run --alias`, dnsmasq
#             addn-hosts + SIGHUP) and then 10000 (n1..n9999 on a second container); the
#             query file asks for every registered name (shuffled)
# Offloads: scale_pairs* and scale_w1 turn them on in every container first (tcp_off leaves
# them off).

SCALE_TESTS="mac1 mac1000 mac10000 scale_w1 scale_pairs2 scale_pairs8 scale_pairs32 scale_nat10 scale_nat10000 scale_dns1 scale_dns10000"
SCALE_L3_TESTS="scale_nat10 scale_nat10000 scale_dns1 scale_dns10000"
SCALE_MAX=32
WSOCK=$RUN/vsww.sock
WSUBNET=10.89.2.0/24
VSWW_PID=
SCALE_N=2                                    # containers on the L2 network (l2.sh makes 2)

vsww(){ vsw_at "$WSOCK" "$@"; }              # the 1-worker daemon's CLI
scale_nss(){ local i; for i in $(seq 3 "$SCALE_MAX"); do echo "vb-b$i vb-v$i"; done; echo "vb-wh vb-w1 vb-w2 vb-nv6 vb-nv7"; }
scale_cleanup(){ local i names=
  if [ -d "$RUN" ]; then
    stop_daemon "$RUN/vswwd.pid" "$WSOCK" vb-w1 vb-w2
    for i in $(seq 3 "$SCALE_MAX"); do names="$names vb-v$i"; done
    # shellcheck disable=SC2086
    [ -s "$RUN/vswd.pid" ] && kill -0 "$(cat "$RUN/vswd.pid")" 2>/dev/null && { vsw rm -f $names >/dev/null 2>&1 || true; }
    [ -s "$RUN/vswnd.pid" ] && kill -0 "$(cat "$RUN/vswnd.pid")" 2>/dev/null && { vswn rm -f vb-nv6 vb-nv7 >/dev/null 2>&1 || true; }
  fi
  # shellcheck disable=SC2046
  ns_cleanup $(scale_nss); SCALE_N=2; }

# progress estimates (e2e.sh est_step / ovh_TEST): seconds per row and rep, and per test
est_pairs(){ echo $((2 * T + 4)); }
est_scale_pairs2(){ est_pairs; }
est_scale_pairs8(){ est_pairs; }
est_scale_pairs32(){ est_pairs; }
est_scale_w1(){ est_pairs; }
est_scale_dns1(){ echo $((DNS_T + 1)); }
est_scale_dns10000(){ echo $((DNS_T + 1)); }
ovh_scale_pairs8(){ echo 12; }
ovh_scale_pairs32(){ echo 45; }
ovh_scale_w1(){ echo 8; }
ovh_scale_dns10000(){ echo 10; }

# ------------------------------------------------------------ the L2 network grows
ns_of(){ [ "$1" = bridge ] && echo "vb-b$2" || echo "vb-v$2"; }   # ns_of ROW I: container I of row ROW
eth0_mac(){ ip -n "$1" -j link show eth0 | jq -er '.[0].address'; }
eth0_ip(){ ip -n "$1" -j -4 addr show eth0 | jq -er '.[0].addr_info[0].local'; }
add_container(){ local row=$1 i=$2 ns
  ns=$(ns_of "$row" "$i")
  if [ "$row" = bridge ]; then
    ns_init "$ns" &&
    ip link add "vb-bp$i" netns vb-bh type veth peer name eth0 netns "$ns" &&
    ip -n "$ns" link set eth0 address "$(printf '02:42:0a:59:00:%02x' $((i + 1)))" mtu 1500 &&
    ip -n "$ns" addr add "10.89.0.$((i + 1))/24" dev eth0 && ip -n "$ns" link set eth0 up &&
    ip -n vb-bh link set "vb-bp$i" master vb-br up || return 1
  else
    vsw run -d --network vb-l2 --name "$ns" -- sleep infinity >>"$RES/vsw-cli.log" 2>&1 || { note vsw "vsw run $ns failed: $(tail -1 "$RES/vsw-cli.log")"; return 1; }
    nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 || return 1
  fi
  nsx "$ns" iperf3 -s -D --pidfile "$RUN/srv-iperf-$ns.pid" >/dev/null 2>&1 || { note "$row" "iperf3 server did not start in $ns"; return 1; }
}
# grow_to N: every L2 row has containers 1..N (a container that cannot be made fails the test's rows: noted)
grow_to(){ local n=$1 row i
  [ "$n" -gt "$SCALE_N" ] || return 0
  log "scale: growing the network from $SCALE_N to $n containers"
  for row in $ROWS; do for i in $(seq $((SCALE_N + 1)) "$n"); do add_container "$row" "$i" || { note "$row" "scale: container $i of $n not made"; return 1; }; done; done
  SCALE_N=$n
  for row in $ROWS; do for i in $(seq 1 "$n"); do   # every container knows every other's MAC before a test: no flood
    nsx "$(ns_of "$row" "$i")" ping -c 1 -W 1 10.89.0.2 >/dev/null 2>&1 || true; done; done
}
# pairs_of ROW N: "SRCNS:DSTNS" for the N/2 pairs of N containers (i -> i + N/2)
pairs_of(){ local i h=$(($2 / 2)); for i in $(seq 1 "$h"); do echo "$(ns_of "$1" "$i"):$(ns_of "$1" $((i + h)))"; done; }

# fwd_pairs TAG PAIRS...: trafgen in every sender at once, T s -> "tx_pps rx_pps" summed over the
# pairs ("SRC:DST" namespaces); a frame of the sender's MAC to its partner's, one config per pair
fwd_pairs(){ local tag=$1 p s d cfg tx0=0 rx0=0 tx1=0 rx1=0 t0 t1 pids=(); shift
  for p in "$@"; do s=${p%%:*}; d=${p#*:}; cfg=$RUN/trafgen-$tag-$s.cfg
    [ -s "$cfg" ] || printf '{ %s, %s, 0x88,0xb5, fill(0x00, 46) }\n' \
      "$(eth0_mac "$d" | sed 's/^/0x/; s/:/,0x/g')" "$(eth0_mac "$s" | sed 's/^/0x/; s/:/,0x/g')" >"$cfg" || return 1
    tx0=$((tx0 + $(eth0_packets "$s" tx))); rx0=$((rx0 + $(eth0_packets "$d" rx)))
  done
  t0=$(date +%s.%N)
  for p in "$@"; do s=${p%%:*}
    ip netns exec "$s" timeout -s INT "$T" trafgen -i "$RUN/trafgen-$tag-$s.cfg" -o eth0 --no-sock-mem --notouch-irq -P 1 --no-cpu-stats >/dev/null 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}" || true   # timeout ends every trafgen (status 124): the counters say what they sent
  t1=$(date +%s.%N); sleep 0.3
  for p in "$@"; do s=${p%%:*}; d=${p#*:}; tx1=$((tx1 + $(eth0_packets "$s" tx))); rx1=$((rx1 + $(eth0_packets "$d" rx))); done
  awk -v w="$(echo "$t1 - $t0" | bc -l)" -v tx=$((tx1 - tx0)) -v rx=$((rx1 - rx0)) 'BEGIN{printf "%.0f %.0f\n", tx/w, rx/w}'
}
# tcp_pairs OUT PAIRS...: iperf3 TCP over every pair at once, T s (+1 s -O 1); OUT.N.json per pair;
# prints the Gbit/s received, summed (a pair without a result counts 0 and is listed on stderr)
tcp_pairs(){ local out=$1 p s d k=0 pids=(); shift
  for p in "$@"; do s=${p%%:*}; d=${p#*:}; k=$((k + 1))
    timeout $((T + 20)) ip netns exec "$s" iperf3 -c "$(eth0_ip "$d")" -t "$T" -O 1 --connect-timeout 3000 -J >"$out.$k.json" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}" || true   # a failed client leaves no result in its JSON: summed as 0 below
  for k in $(seq 1 $#); do jq -e '.end.sum_received.bits_per_second' "$out.$k.json" >/dev/null 2>&1 || echo "pair $k: no result" >&2; done
  for k in $(seq 1 $#); do jq '.end.sum_received.bits_per_second // 0' "$out.$k.json" 2>/dev/null || echo 0; done | awk '{s+=$1} END{printf "%.4f\n", s/1e9}'
}
# m_pairs ROW REP KEY PIDS PAIRS...: (1) and (2) over the pairs; metrics KEY_tx_kpps, KEY_rx_kpps, KEY_gbps
m_pairs(){ local row=$1 r=$2 key=$3 pids=$4 f; shift 4
  f=$RES/$row.$key.fwd.$r.txt
  timed "$f" "$pids" fwd_pairs "$key" "$@"
  if [ -s "$f" ]; then rec "$row" "${key}_tx_kpps" "$r" "$(awk '{print $1/1000}' "$f")"; rec "$row" "${key}_rx_kpps" "$r" "$(awk '{print $2/1000}' "$f")"
  else note "$row" "$key forwarding rep $r: no result ($(head -1 "$f.err" 2>/dev/null))"; fi
  rec_cpu "$row" "${key}_fwd" "$r" "$f"
  f=$RES/$row.$key.tcp.$r.txt
  timed "$f" "$pids" tcp_pairs "$f" "$@"
  if [ -s "$f" ]; then rec "$row" "${key}_gbps" "$r" "$(cat "$f")"; else rec "$row" "${key}_gbps" "$r" 0; fi
  if [ -s "$f.err" ]; then note "$row" "$key TCP rep $r: $(sort -u "$f.err" | head -3 | tr '\n' ' ')"; fi
  rec_cpu "$row" "${key}_tcp" "$r" "$f"; }
pre_pairs(){ grow_to "$1"; offloads on; }
pre_scale_pairs2(){ pre_pairs 2; }
pre_scale_pairs8(){ pre_pairs 8; }
pre_scale_pairs32(){ pre_pairs 32; }
# shellcheck disable=SC2046
m_scale_pairs(){ m_pairs "$1" "$2" "pairs$3" "$(pids_of "$1")" $(pairs_of "$1" "$3"); }
m_scale_pairs2(){ m_scale_pairs "$1" "$2" 2; }
m_scale_pairs8(){ m_scale_pairs "$1" "$2" 8; }
m_scale_pairs32(){ m_scale_pairs "$1" "$2" 32; }

m_mac10000(){ m_mac "$1" "$2" 10000; }
post_mac10000(){
  case " $ROWS " in *" bridge "*) rec bridge fdb10000_entries 1 "$(bridge -n vb-bh fdb show br vb-br | grep -vc permanent)";; esac
  case " $ROWS " in *" vsw "*) rec vsw fdb10000_entries 1 "$(vsw fdb --format json 2>/dev/null | jq length)";; esac; }

# scale_w1: the vsw row on a second daemon with one worker (made once), the kernel row as in pairs2
pre_scale_w1(){ local i
  offloads on
  case " $ROWS " in *" vsw "*) ;; *) return 0;; esac
  [ -n "$VSWW_PID" ] && return 0
  ns_init vb-wh || { note vsw "scale_w1: no namespace vb-wh"; return 0; }
  WORKERS=1 start_daemon vb-wh "$WSOCK" vsww --default-subnet 10.89.9.0/24 || return 0   # noted by start_daemon: no figure
  VSWW_PID=$DAEMON_PID
  l2_net vsww "$WSUBNET" || return 0
  for i in 1 2; do
    vsww run -d --network vb-l2 --name "vb-w$i" -- sleep infinity >>"$RES/vsww-cli.log" 2>&1 || { note vsw "vsw run vb-w$i (1 worker) failed: $(tail -1 "$RES/vsww-cli.log")"; return 0; }
    nsx "vb-w$i" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 || true   # IPv6 on: noise only
  done
  nsx vb-w2 iperf3 -s -D --pidfile "$RUN/srv-iperf-vb-w2.pid" >/dev/null 2>&1 || note vsw "iperf3 server did not start in vb-w2"
  nsx vb-w1 ping -c 3 -i 0.2 -W 1 "$(eth0_ip vb-w2)" >/dev/null 2>&1 || note vsw "scale_w1: vb-w1 cannot ping vb-w2"
}
m_scale_w1(){
  if [ "$1" = vsw ]; then [ -n "$VSWW_PID" ] || return 0; m_pairs vsw "$2" w1 "$VSWW_PID" vb-w1:vb-w2
  else m_pairs "$1" "$2" w1 "$(pids_of "$1")" "$(ns_of "$1" 1):$(ns_of "$1" 2)"; fi; }

# ------------------------------------------------------------ NAT: concurrent flows
# nat_cfg ROW N: the trafgen config of N UDP flows through the gateway (made once per row and N)
nat_cfg(){ local row=$1 n=$2 ns cfg=$RUN/trafgen-nat-$1-$2.cfg gw src i
  [ -s "$cfg" ] && { echo "$cfg"; return 0; }
  ns=$(l3ns1 "$row")
  nsx "$ns" ping -c 1 -W 1 "$NGW" >/dev/null 2>&1 || true   # the gateway's MAC in the neighbour table
  gw=$(ip -n "$ns" -j neigh show "$NGW" | jq -er '.[0].lladdr') || { note "$row" "nat$n: no MAC of the gateway $NGW in $ns"; return 1; }
  src=$(eth0_mac "$ns") || return 1
  gw=$(sed 's/^/0x/; s/:/,0x/g' <<<"$gw"); src=$(sed 's/^/0x/; s/:/,0x/g' <<<"$src")
  for i in $(seq 0 $((n - 1))); do
    # 60 bytes: IPv4 (20) 10.89.1.2 -> 198.51.100.1, UDP (8) 20000+i -> 9, 18 bytes of zeros
    printf '{ %s, %s, c16(0x0800), 0x45,0x00, c16(46), c16(0), 0x40,0x00, 64, 17, csumip(14, 33), 10,89,1,2, 198,51,100,1, c16(%d), c16(9), c16(26), csumudp(14, 34), fill(0x00, 18) }\n' \
      "$gw" "$src" $((20000 + i))
  done >"$cfg"
  echo "$cfg"; }
m_scale_nat(){ local row=$1 r=$2 n=$3 f=$RES/$1.nat$3.$2.txt cfg
  cfg=$(nat_cfg "$row" "$n") || return 0
  timed "$f" "$(l3pids "$row")" trafgen_rate "$(l3ns1 "$row")" "$(l3out "$row")" "$cfg"
  if [ -s "$f" ]; then rec "$row" "nat${n}_tx_kpps" "$r" "$(awk '{print $1/1000}' "$f")"; rec "$row" "nat${n}_rx_kpps" "$r" "$(awk '{print $2/1000}' "$f")"
  else note "$row" "nat$n rep $r: no result"; fi
  rec_cpu "$row" "nat$n" "$r" "$f"; }
m_scale_nat10(){ m_scale_nat "$1" "$2" 10; }
m_scale_nat10000(){ m_scale_nat "$1" "$2" 10000; }
post_nat_flows(){ local n=$1
  case " $ROWS_L3 " in *" bridge "*) rec bridge "nat${n}_ct_entries" 1 "$(nsx vb-nbh cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo nan)";; esac
  case " $ROWS_L3 " in *" vsw "*) rec vsw "nat${n}_ct_entries" 1 "$(vswn conntrack --format json 2>/dev/null | jq length 2>/dev/null || echo nan)";; esac; }
post_scale_nat10(){ post_nat_flows 10; }
post_scale_nat10000(){ post_nat_flows 10000; }

# ------------------------------------------------------------ DNS: registered names
# dns_register FIRST LAST CONTAINER: names nFIRST..nLAST, on a new vsw container and in
# dnsmasq's addn-hosts (+ SIGHUP); the query file asks for n0..nLAST, shuffled
dns_register(){ local a=$1 b=$2 c=$3 i ip args=() row
  case " $ROWS_L3 " in *" vsw "*)   # first: the bridge row's hosts file uses the address vsw gave the container
    for i in $(seq "$a" "$b"); do args+=(--alias "n$i"); done
    if vswn run -d --name "$c" "${args[@]}" -- sleep infinity >>"$RES/vswn-cli.log" 2>&1; then
      eth0_ip "$c" >"$RUN/dns-ip-$c" || note vsw "no address on $c"
    else note vsw "vsw run $c with $((b - a + 1)) aliases failed: $(tail -1 "$RES/vswn-cli.log")"; fi;;
  esac
  case " $ROWS_L3 " in *" bridge "*)
    ip=$(cat "$RUN/dns-ip-$c" 2>/dev/null) || ip="10.89.1.$(( ${c#vb-nv} + 1 ))"   # no vsw row: the address it would have had
    for i in $(seq "$a" "$b"); do echo "$ip n$i"; done >>"$RUN/dns-hosts"
    kill -HUP "$DNSMASQ_PID" 2>/dev/null || note bridge "dnsmasq gone: no SIGHUP";;
  esac
  for i in $(seq 0 "$b"); do echo "n$i A"; done | shuf >"$RUN/dns-queries-$b"
  for row in $ROWS_L3; do   # the last name answers with its container's address on both (dnsmasq re-reads on SIGHUP in its own time)
    for i in $(seq 20); do
      nsx "$(l3ns1 "$row")" dig +short +time=1 +tries=1 @"$NGW" "n$b" A 2>/dev/null | grep -q '^10\.89\.1\.' && break
      [ "$i" = 20 ] && note "$row" "dig n$b @$NGW: no address after registering n$a..n$b"
      sleep 0.25
    done
  done; }
pre_scale_dns1(){ dns_register 0 0 vb-nv6; }
pre_scale_dns10000(){ dns_register 1 9999 vb-nv7; }
m_scale_dns1(){ m_dns "$1" "$2" "$RUN/dns-queries-0" dns1; }
m_scale_dns10000(){ m_dns "$1" "$2" "$RUN/dns-queries-9999" dns10000; }
