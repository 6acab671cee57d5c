# l3.sh -- e2e.sh's routed tests and their topology (sourced by e2e.sh, after lib.sh; never
# run on its own). How to run and read them: docs/BENCH-L3.md.
#
# A second pair of topologies, made only when one of these tests is asked for: a container,
# its gateway in a "host" namespace, and an "outside" namespace (198.51.100.1, TEST-NET-2,
# running iperf3 -s) behind an uplink veth; container subnet 10.89.1.0/24, gateway
# 10.89.1.1, client 10.89.1.2.
#   bridge  vb-nbh: Linux bridge vb-nbr 10.89.1.1/24, ip_forward=1, uplink vb-nbu
#           198.51.100.2/24, `iptables -t nat -A POSTROUTING -s 10.89.1.0/24 ! -o vb-nbr -j
#           MASQUERADE`, dnsmasq on 10.89.1.1 (addn-hosts: svc -> 10.89.1.3-6, --no-resolv,
#           default cache); container vb-nb1; outside vb-nbo
#   vsw     vb-nvh: a second daemon, `--uplink vb-nvu --uplink-ip 198.51.100.2/24
#           --uplink-gateway 198.51.100.1 --dns 198.51.100.1` (nothing answers there: no
#           query leaves our namespaces), containers vb-nv1 (client) and vb-nv2..5 (`vsw run
#           -d --alias svc`: 10.89.1.3-6, the same four addresses); outside vb-nvo
#
# Tests:
#   nat_tcp_def  iperf3 TCP container -> outside through masquerade, default offloads
#   nat_tcp_off  same, `ethtool -K eth0 tx off tso off gso off` in the client container
#   dns          dnsperf from the container to the gateway, query file `svc A` (a name with
#                four A records): queries/s, avg latency, lost %; DNS_T s per run,
#                DNSPERF_OPTS (same for both rows); the server's CPU (dnsmasq for the kernel
#                row, the vsw daemon for vsw); vsw's DNS counters around the run (answered
#                locally, lost on the punt ring, dropped by the server)
# The NAT tests check that the outside server really talks to 198.51.100.2 (`ss` in the
# outside namespace mid-run); the DNS test checks that both servers give four answers.

L3_TESTS="nat_tcp_def nat_tcp_off dns"
L3_NSS="vb-nb1 vb-nbh vb-nbo vb-nv1 vb-nv2 vb-nv3 vb-nv4 vb-nv5 vb-nvh vb-nvo"   # every namespace of the routed topologies
L3_LINKS="vb-nbp1 vb-nbu vb-nvu"             # host ends of their veths (made inside vb-nbh / vb-nvh)
NSOCK=$RUN/vswn.sock
NSUBNET=10.89.1.0/24
NGW=10.89.1.1
NIP1=10.89.1.2
OUT_IP=198.51.100.1                          # the outside server (TEST-NET-2, only in vb-nbo / vb-nvo)
UPL_IP=198.51.100.2                          # the uplink / masquerade address
NMETRICS=127.0.0.1:9469                      # the L3 daemon's metrics, on vb-nvh's own loopback

vswn(){ vsw_at "$NSOCK" "$@"; }              # the L3 daemon's CLI
is_l3(){ case " $L3_TESTS ${SCALE_L3_TESTS:-} " in *" $1 "*) return 0;; esac; return 1; }   # scale.sh's routed tests too

# ------------------------------------------------------------ topologies
outside_up(){ # outside_up HOSTNS HOSTEND OUTNS: the uplink veth and the outside server
  ns_init "$3" || return 1
  ip link add "$2" netns "$1" type veth peer name eth0 netns "$3" || return 1
  ip -n "$3" addr add "$OUT_IP/24" dev eth0 && ip -n "$3" link set eth0 up && ip -n "$1" link set "$2" up || return 1
  nsx "$3" iperf3 -s -D -B "$OUT_IP" --pidfile "$RUN/srv-iperf-$3.pid" >/dev/null 2>&1 || { note "$3" "iperf3 server did not start"; return 1; }
}
dns_names(){ local i; for i in 3 4 5 6; do echo "10.89.1.$i svc"; done; }   # = vb-nv2..5's addresses
up_l3_bridge(){
  ns_init vb-nbh && ns_init vb-nb1 || return 1
  ip -n vb-nbh link add vb-nbr type bridge && ip -n vb-nbh addr add "$NGW/24" dev vb-nbr && ip -n vb-nbh link set vb-nbr up || return 1
  ip link add vb-nbp1 netns vb-nbh type veth peer name eth0 netns vb-nb1 || return 1
  ip -n vb-nb1 link set eth0 address 02:42:0a:59:01:02 mtu 1500 || return 1
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
  nsx vb-nbh iptables -t nat -S >"$RES/bridge-iptables.txt" 2>&1 || return 1
}
up_l3_vsw(){
  ns_init vb-nvh || return 1
  outside_up vb-nvh vb-nvu vb-nvo || return 1
  start_daemon vb-nvh "$NSOCK" vswn --default-subnet "$NSUBNET" --uplink vb-nvu --uplink-ip "$UPL_IP/24" \
    --uplink-gateway "$OUT_IP" --dns "$OUT_IP" --metrics "$NMETRICS" || return 1
  VSWN_PID=$DAEMON_PID
  local i alias got want="$NGW $NIP1 10.89.1.3 10.89.1.4 10.89.1.5 10.89.1.6"
  for i in 1 2 3 4 5; do
    alias=(--alias svc); [ $i = 1 ] && alias=()
    vswn run -d --name "vb-nv$i" "${alias[@]}" -- sleep infinity >>"$RES/vswn-cli.log" 2>&1 \
      || { note vsw "vsw run vb-nv$i failed: $(tail -1 "$RES/vswn-cli.log")"; return 1; }
    nsx "vb-nv$i" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 || return 1
  done
  vswn network inspect bridge >"$RES/vswn-network.json" 2>>"$RES/vswn-cli.log" || { note vsw "vsw network inspect bridge (routed) failed"; return 1; }
  got="$(jq -r '.gateway' "$RES/vswn-network.json") $(for i in 1 2 3 4 5; do
    jq -r ".endpoints[] | select(.container==\"vb-nv$i\") | .ip" "$RES/vswn-network.json"; done | tr '\n' ' ')"
  # shellcheck disable=SC2086
  [ "$(echo $got)" = "$want" ] || { note vsw "unexpected L3 addresses (gateway, vb-nv1..5): $got"; return 1; }
}
l3ns1(){ [ "$1" = bridge ] && echo vb-nb1 || echo vb-nv1; }
l3out(){ [ "$1" = bridge ] && echo vb-nbo || echo vb-nvo; }
l3pids(){ [ "$1" = vsw ] && echo "$VSWN_PID" || echo -; }
nat_offloads(){ local s=$1 row; for row in $ROWS_L3; do
  nsx "$(l3ns1 "$row")" ethtool -K eth0 tx "$s" tso "$s" gso "$s" >/dev/null 2>&1 || note "$row" "ethtool -K eth0 tx $s in $(l3ns1 "$row") failed"
done; }
l3warm(){ local row=$1 ns n; ns=$(l3ns1 "$1")
  case $2 in
    dns) nsx "$ns" dig +short +time=2 +tries=2 @"$NGW" svc A >"$RES/$row.dns.answers.txt" 2>&1 || true   # no answer: counted (0) and noted below
         n=$(grep -c '^10\.89\.1\.' "$RES/$row.dns.answers.txt" || true)   # grep -c exits 1 when it counts 0 (and still prints 0)
         rec "$row" dns_answers 1 "$n"
         if [ "$n" != 4 ]; then note "$row" "dig svc @$NGW gave $n addresses, not 4: $(head -3 "$RES/$row.dns.answers.txt" | tr '\n' ' ')"; fi;;
    *)   nsx "$ns" ping -c 3 -i 0.2 -W 1 "$OUT_IP" >/dev/null 2>&1 || note "$row" "ping $OUT_IP (through NAT) failed before $2";;
  esac; }

# ------------------------------------------------------------ measurements (one rep of one row)
pre_nat_tcp_def(){ nat_offloads on; }
pre_nat_tcp_off(){ nat_offloads off; }
# TCP through masquerade: container -> gateway -> uplink -> $OUT_IP. Mid-run, `ss` in the
# outside namespace lists the peers of the iperf3 server: they must all be the uplink
# address (nat_*_masq = 1), never the container's own (then the figure is not a NAT one).
m_nat_tcp(){ local row=$1 r=$2 cond=$3 f=$RES/$1.nat_tcp_$3.$2.json sp peers
  ( sleep $((T / 2 + 1)); nsx "$(l3out "$row")" ss -Htn state established '( sport = :5201 )' ) >"$f.ss" 2>&1 & sp=$!
  timed "$f" "$(l3pids "$row")" timeout $((T + 20)) ip netns exec "$(l3ns1 "$row")" iperf3 -c "$OUT_IP" -t "$T" -O 1 --connect-timeout 3000 -J
  wait "$sp" || true   # a failed ss leaves no peers in $f.ss: the masquerade check below notes it
  if jq -e '.end.sum_received.bits_per_second' "$f" >/dev/null 2>&1; then
    rec "$row" "nat_tcp_${cond}_gbps" "$r" "$(jq '.end.sum_received.bits_per_second/1e9' "$f")"
    rec "$row" "nat_tcp_${cond}_retr" "$r" "$(jq '.end.sum_sent.retransmits // 0' "$f")"
  else rec "$row" "nat_tcp_${cond}_gbps" "$r" 0; note "$row" "nat_tcp_$cond rep $r: $(jq -r '.error // "no result"' "$f" 2>/dev/null | head -1)"; fi
  # shellcheck disable=SC2086
  peers=$(awk '{print $4}' "$f.ss" | sed 's/:[0-9]*$//' | sort -u | tr '\n' ' '); peers=$(echo $peers)
  if [ "$peers" = "$UPL_IP" ]; then rec "$row" "nat_tcp_${cond}_masq" "$r" 1
  else rec "$row" "nat_tcp_${cond}_masq" "$r" 0; note "$row" "nat_tcp_$cond rep $r: the outside server's peers were '${peers:-none}', not $UPL_IP"; fi
  rec_cpu "$row" "nat_tcp_$cond" "$r" "$f"; }
m_nat_tcp_def(){ m_nat_tcp "$1" "$2" def; }
m_nat_tcp_off(){ m_nat_tcp "$1" "$2" off; }
post_nat_tcp_def(){ nat_conntrack nat_tcp_def; }
post_nat_tcp_off(){ nat_conntrack nat_tcp_off; }
nat_conntrack(){ # the vsw row's connection table after a NAT test (kept with the results)
  case " $ROWS_L3 " in *" vsw "*) vswn conntrack >"$RES/vswn.conntrack.$1.txt" 2>&1 || note vsw "vsw conntrack after $1 failed";; esac; }
# vsw's DNS counters (Prometheus, on the L3 daemon's loopback) -> "local punt_lost dropped",
# or nothing when the metrics cannot be read (m_dns notes it)
dns_ctr(){ local m
  m=$(nsx vb-nvh curl -s --max-time 5 "http://$NMETRICS/metrics" 2>/dev/null) || return 0
  awk '/^vsw_dns_queries_total\{result="local"\}/ {l=$2} /^vsw_dns_queries_total\{result="dropped"\}/ {d=$2}
       /^vsw_dns_punt_lost_total / {p=$2} END {printf "%d %d %d\n", l, p, d}' <<<"$m"; }
# m_dns ROW REP [QUERIES KEY]: dnsperf over the query file QUERIES (default: `svc A`), metrics KEY_* (default dns_*)
m_dns(){ local row=$1 r=$2 q=${3:-$RUN/dns-queries} k=${4:-dns} f pids v c0='' c1=''
  f=$RES/$row.$k.$r.txt
  pids=$(l3pids "$row"); if [ "$row" = bridge ]; then pids=$DNSMASQ_PID; fi
  if [ "$row" = vsw ]; then c0=$(dns_ctr); fi
  # shellcheck disable=SC2086
  timed "$f" "$pids" timeout $((DNS_T + 30)) ip netns exec "$(l3ns1 "$row")" dnsperf -s "$NGW" -d "$q" -l "$DNS_T" $DNSPERF_OPTS
  v=$(sed -n 's/.*Queries per second: *\([0-9.]*\).*/\1/p' "$f")
  if [ -n "$v" ]; then
    rec "$row" "${k}_qps" "$r" "$v"
    rec "$row" "${k}_lat_us" "$r" "$(sed -n 's/.*Average Latency (s): *\([0-9.]*\).*/\1/p' "$f" | awk '{print $1 * 1e6}')"
    rec "$row" "${k}_lost_pct" "$r" "$(sed -n 's/.*Queries lost: *[0-9]* (\([0-9.]*\)%).*/\1/p' "$f")"
    v=$(sed -n 's/.*Response codes: *\(.*\)$/\1/p' "$f"); case $v in "NOERROR "*"(100.00%)") ;; *) note "$row" "$k rep $r: response codes: ${v:-none}";; esac
  else rec "$row" "${k}_qps" "$r" 0; note "$row" "$k rep $r: no result ($(head -2 "$f.err" | tr '\n' ' '))"; fi
  if [ "$row" = bridge ]; then rec bridge "${k}_proccpu" "$r" "$(cpuf "$f" proc_cpu)"; fi
  rec_cpu "$row" "$k" "$r" "$f"
  if [ "$row" = vsw ]; then c1=$(dns_ctr); echo "$c0 -> $c1" >"$f.vswdns"
    # shellcheck disable=SC2086
    set -- $c0 $c1
    if [ $# = 6 ]; then rec vsw "${k}_answered" "$r" $(( $4 - $1 )); rec vsw "${k}_punt_lost" "$r" $(( $5 - $2 )); rec vsw "${k}_dropped" "$r" $(( $6 - $3 ))
    else note vsw "$k rep $r: could not read the daemon's DNS counters ($c0 -> $c1)"; fi
  fi; }
