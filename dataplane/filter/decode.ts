// Per-frame decode for the filters: what a frame holds, read once into one object of
// integers per compiled filter, only as deep as the filter needs. The leaves (tree.ts) then
// compare fields. Headers are read through wire/'s field offsets and functions rather than
// its views: the decode runs for every frame a capture or trace sees, and a view per header
// (its reset's stores, its getters) nearly doubled its instructions.

import * as arp from '../wire/arp';
import * as bytes from '../wire/bytes';
import * as ethernet from '../wire/ethernet';
import * as icmp from '../wire/icmp';
import * as ipv4 from '../wire/ipv4';
import * as l4 from '../wire/l4';
import * as vlan from '../wire/vlan';

// wire/'s names, bound once here. In the CommonJS that tsc emits, each use of an imported
// name is a property load from the other module's exports object (with a map check; V8 does
// not fold it, as tsc assigns every exported const twice), and this code runs for every frame
// a capture or trace sees: about 25 such loads per IPv4 frame, a sixth of its instructions.
const readU16 = bytes.readU16;
const readU32 = bytes.readU32;
const ETH_HDR_LEN = ethernet.ETH_HDR_LEN;
const ETH_TYPE_OFF = ethernet.ETH_TYPE_OFF;
const ETHERTYPE_ARP = ethernet.ETHERTYPE_ARP;
const ETHERTYPE_IPV4 = ethernet.ETHERTYPE_IPV4;
const isVlanTpid = vlan.isVlanTpid;
const tciPcp = vlan.tciPcp;
const tciVid = vlan.tciVid;
const VLAN_HDR_LEN = vlan.VLAN_HDR_LEN;
const VLAN_TAG_LEN = vlan.VLAN_TAG_LEN;
const VLAN_TCI_OFF = vlan.VLAN_TCI_OFF;
const ipv4CheckReason = ipv4.ipv4CheckReason;
const IPV4_OK = ipv4.IPV4_OK;
const IPV4_PROTOCOL_OFF = ipv4.IPV4_PROTOCOL_OFF;
const IPV4_SRC_OFF = ipv4.IPV4_SRC_OFF;
const IPV4_DST_OFF = ipv4.IPV4_DST_OFF;
const IPV4_FLAGS_FRAG_OFF = ipv4.IPV4_FLAGS_FRAG_OFF;
const IPV4_FRAG_MASK = ipv4.IPV4_FRAG_MASK;
const ipv4HeaderLength = ipv4.ipv4HeaderLength;
const ipv4TotalLength = ipv4.ipv4TotalLength;
const IPPROTO_ICMP = ipv4.IPPROTO_ICMP;
const IPPROTO_TCP = ipv4.IPPROTO_TCP;
const IPPROTO_UDP = ipv4.IPPROTO_UDP;
const L4_PORTS_LEN = l4.L4_PORTS_LEN;
const L4_SRC_PORT_OFF = l4.L4_SRC_PORT_OFF;
const L4_DST_PORT_OFF = l4.L4_DST_PORT_OFF;
const ICMP_TYPE_OFF = icmp.ICMP_TYPE_OFF;
const ARP_LEN = arp.ARP_LEN;
const ARP_SPA_OFF = arp.ARP_SPA_OFF;
const ARP_TPA_OFF = arp.ARP_TPA_OFF;
const arpIsEthernetIpv4 = arp.arpIsEthernetIpv4;

/** How deep decode() reads before evaluating: the deepest level any leaf needs. */
const NONE = 0; // len only
const L2 = 1;   // MACs, tags, EtherType
const L3 = 2;   // IPv4 / ARP addresses, IPv4 protocol
const L4 = 3;   // ports, ICMP type
export { NONE as LVL_NONE, L2 as LVL_L2, L3 as LVL_L3, L4 as LVL_L4 };

/** What the decoder found. One per compiled filter; integers only, reset per frame. */
export class Decoded {
  off = 0;
  len = 0;
  /** Ethernet header (and tags) complete. */
  l2 = false;
  /** EtherType after the tags; -1 when !l2. */
  et = -1;
  /** Tags looked through (0..2); VID and PCP of the outermost tag, -1 when untagged. */
  tags = 0;
  vid = -1;
  pcp = -1;
  /** Valid IPv4 header: protocol (-1 otherwise), addresses as signed int32. */
  proto = -1;
  ipSrc = 0;
  ipDst = 0;
  ip = false;
  /** Complete Ethernet/IPv4 ARP packet: sender / target protocol addresses (int32). */
  arp = false;
  spa = 0;
  tpa = 0;
  /** TCP/UDP ports of a first fragment (-1 otherwise); ICMP type (-1 otherwise). */
  sport = -1;
  dport = -1;
  icmpType = -1;
}

export function decode(d: Decoded, buf: Uint8Array, off: number, len: number, level: number): void {
  d.off = off;
  d.len = len;
  d.l2 = false;
  d.et = -1;
  d.tags = 0;
  d.vid = -1;
  d.pcp = -1;
  d.ip = false;
  d.proto = -1;
  d.arp = false;
  d.sport = -1;
  d.dport = -1;
  d.icmpType = -1;
  if (level === NONE || len < ETH_HDR_LEN) return;
  // p: where the EtherType (or a tag's TPID) is; each tag moves it 4 bytes on.
  let p = off + ETH_TYPE_OFF;
  let et = readU16(buf, p);
  let tags = 0;
  let tci = -1;
  if (isVlanTpid(et)) {
    if (len < VLAN_HDR_LEN) return;
    tci = readU16(buf, off + VLAN_TCI_OFF);
    p += VLAN_TAG_LEN;
    tags = 1;
    et = readU16(buf, p);
    if (isVlanTpid(et)) {
      if (len < VLAN_HDR_LEN + VLAN_TAG_LEN) return;
      p += VLAN_TAG_LEN;
      tags = 2;
      et = readU16(buf, p);
    }
  }
  d.l2 = true;
  d.et = et;
  d.tags = tags;
  if (tags !== 0) {
    d.vid = tciVid(tci);
    d.pcp = tciPcp(tci);
  }
  if (level === L2) return;
  const l3 = p + (ETH_HDR_LEN - ETH_TYPE_OFF); // after the EtherType
  const avail = off + len - l3;
  if (et === ETHERTYPE_IPV4) {
    if (ipv4CheckReason(buf, l3, avail) !== IPV4_OK) return;
    const proto = buf[l3 + IPV4_PROTOCOL_OFF];
    d.ip = true;
    d.proto = proto;
    d.ipSrc = readU32(buf, l3 + IPV4_SRC_OFF) | 0;
    d.ipDst = readU32(buf, l3 + IPV4_DST_OFF) | 0;
    if (level === L3) return;
    if ((readU16(buf, l3 + IPV4_FLAGS_FRAG_OFF) & IPV4_FRAG_MASK) !== 0) return;
    const hl = ipv4HeaderLength(buf, l3);
    const l4off = l3 + hl;
    const l4len = ipv4TotalLength(buf, l3) - hl;
    if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) {
      if (l4len >= L4_PORTS_LEN) {
        d.sport = readU16(buf, l4off + L4_SRC_PORT_OFF);
        d.dport = readU16(buf, l4off + L4_DST_PORT_OFF);
      }
    } else if (proto === IPPROTO_ICMP) {
      if (l4len > ICMP_TYPE_OFF) d.icmpType = buf[l4off + ICMP_TYPE_OFF];
    }
  } else if (et === ETHERTYPE_ARP) {
    if (avail < ARP_LEN || !arpIsEthernetIpv4(buf, l3)) return;
    d.arp = true;
    d.spa = readU32(buf, l3 + ARP_SPA_OFF) | 0;
    d.tpa = readU32(buf, l3 + ARP_TPA_OFF) | 0;
  }
}
