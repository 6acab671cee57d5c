# forwarding.sh -- e2e.sh's frame-forwarding tests, on l2.sh's topology (sourced by e2e.sh,
# after lib.sh and l2.sh; never run on its own).
#
# Tests (the method of /work/shared/anchors/peers.sh):
#   mac1      trafgen, T s: 60-byte frames (EtherType 0x88b5) from c1 to c2's MAC, 1 source
#             MAC (02:b0:00:00:00:00), `trafgen -P 1`; tx kpps = c1's eth0 tx packets / wall,
#             rx kpps = c2's eth0 rx packets / wall (counters read 0.3 s after trafgen stops)
#   mac1000   the same with 1000 source MACs (02:b0:00:00:xx:xx, one per frame, round robin);
#             after it, the MAC table's size (bridge: `bridge fdb`, non-permanent; vsw: `vsw fdb`)
# Offloads are whatever the tests before left (trafgen's raw frames do not care).

FWD_TESTS="mac1 mac1000"

# eth0_packets NS tx|rx: the packets eth0 of namespace NS has sent or received
eth0_packets(){ ip -n "$1" -s -j link show eth0 | jq -e ".[0].stats64.$2.packets"; }
# trafgen_rate NSRC NSDST CFG -> "tx_pps rx_pps" (eth0 counters of both ends over the run)
trafgen_rate(){ local ns1=$1 ns2=$2 cfg=$3 tx0 rx0 tx1 rx1 t0 t1
  tx0=$(eth0_packets "$ns1" tx) && rx0=$(eth0_packets "$ns2" rx) || return 1
  t0=$(date +%s.%N)
  # timeout ends trafgen (status 124): that is its normal end, and the counters say what it sent
  ip netns exec "$ns1" timeout -s INT "$T" trafgen -i "$cfg" -o eth0 --no-sock-mem --notouch-irq -P 1 --no-cpu-stats >/dev/null 2>&1 || true
  t1=$(date +%s.%N); sleep 0.3
  tx1=$(eth0_packets "$ns1" tx) && rx1=$(eth0_packets "$ns2" rx) || return 1
  awk -v w="$(echo "$t1 - $t0" | bc -l)" -v tx=$((tx1 - tx0)) -v rx=$((rx1 - rx0)) 'BEGIN{printf "%.0f %.0f\n", tx/w, rx/w}'
}
# mac_cfg ROW N: the trafgen config of N source MACs to c2's MAC (made once per row and N);
# fails (and notes it) when c2's MAC cannot be read
mac_cfg(){ local row=$1 n=$2 cfg=$RUN/trafgen-$1-$2.cfg d i
  [ -s "$cfg" ] && { echo "$cfg"; return 0; }
  d=$(ip -n "$(ns2 "$row")" -j link show eth0 | jq -er '.[0].address' | sed 's/^/0x/; s/:/,0x/g') \
    || { note "$row" "mac$n: no MAC address of eth0 in $(ns2 "$row")"; return 1; }
  : >"$cfg"; for i in $(seq 0 $((n - 1))); do
    printf '{ %s, 0x02,0xb0,0x00,0x00,0x%02x,0x%02x, 0x88,0xb5, fill(0x00, 46) }\n' "$d" $((i / 256)) $((i % 256)) >>"$cfg"; done
  echo "$cfg"; }
m_mac(){ local row=$1 r=$2 n=$3 f=$RES/$1.mac$3.$2.txt cfg
  cfg=$(mac_cfg "$row" "$n") || return 0
  timed "$f" "$(pids_of "$row")" trafgen_rate "$(ns1 "$row")" "$(ns2 "$row")" "$cfg"
  if [ -s "$f" ]; then
    rec "$row" "mac${n}_tx_kpps" "$r" "$(awk '{print $1/1000}' "$f")"; rec "$row" "mac${n}_rx_kpps" "$r" "$(awk '{print $2/1000}' "$f")"
  else note "$row" "trafgen mac$n rep $r: no result"; fi
  rec_cpu "$row" "mac$n" "$r" "$f"; }
m_mac1(){ m_mac "$1" "$2" 1; }
m_mac1000(){ m_mac "$1" "$2" 1000; }
post_mac1000(){
  case " $ROWS " in *" bridge "*) rec bridge fdb_entries 1 "$(bridge -n vb-bh fdb show br vb-br | grep -vc permanent)";; esac
  case " $ROWS " in *" vsw "*) rec vsw fdb_entries 1 "$(vsw fdb --format json 2>/dev/null | jq length)";; esac; }
