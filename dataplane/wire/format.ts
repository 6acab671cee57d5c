// One-line, tcpdump-like description of a frame, for traces, logs and test failures:
//
//   02:42:0a:00:00:02 > ff:ff:ff:ff:ff:ff, ARP request who-has 10.0.0.3 tell 10.0.0.2
//   02:42:0a:00:00:02 > 02:42:0a:00:00:03, IPv4 10.0.0.2 > 10.0.0.3 ICMP echo request id 5 seq 1
//   02:42:0a:00:00:02 > 02:42:0a:00:00:03, vlan 10 pcp 0, IPv4 10.0.0.2.43210 > 10.0.0.3.80 TCP [S] len 0
//   vnet(csum 34+16) 02:42:0a:00:00:02 > ...           (only when the virtio-net header is not all zero)
//   truncated ethernet header: 9 bytes
//
// It never throws: it prints what it could parse, then "[truncated: ...]" or "[malformed: ...]".
// Not for the hot path (it builds strings); it is what a trace calls when tracing is on.

import { readU16 } from './bytes';
import { ArpView, ARP_OP_REPLY, ARP_OP_REQUEST } from './arp';
import {
  ETH_HDR_LEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_QINQ, ETHERTYPE_VLAN,
} from './ethernet';
import {
  ICMP_DEST_UNREACH, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMP_TIME_EXCEEDED, IcmpView,
} from './icmp';
import { ipToString } from './ip';
import {
  IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPV4_BAD_IHL, IPV4_BAD_TOTAL_LENGTH, IPV4_BAD_VERSION,
  IPV4_HDR_TRUNCATED, IPV4_OK, Ipv4View,
} from './ipv4';
import { macToString } from './mac';
import { TcpView, tcpFlagsToString } from './tcp';
import { UdpView } from './udp';
import {
  VNET_F_DATA_VALID, VNET_F_NEEDS_CSUM, VNET_GSO_ECN, VNET_GSO_TCPV4, VNET_GSO_TCPV6, VNET_GSO_UDP,
  VNET_HDR_LEN, VnetHdrView,
} from './vnet';

/** Stacked VLAN tags we are willing to print before calling the frame malformed. */
const MAX_TAGS = 8;

const vnetView = new VnetHdrView();
const arpView = new ArpView();
const ipView = new Ipv4View();
const icmpView = new IcmpView();
const tcpView = new TcpView();
const udpView = new UdpView();

export function formatFrame(buf: Uint8Array, off: number, len: number, vnet = false): string {
  // Clamp to what the buffer really holds, so a wrong len cannot make us read garbage.
  if (!Number.isInteger(off) || off < 0) off = 0;
  if (!Number.isInteger(len) || len < 0) len = 0;
  len = Math.min(len, Math.max(0, buf.length - off));

  let out = '';
  if (vnet) {
    if (len < VNET_HDR_LEN) return `truncated vnet header: ${len} bytes`;
    out = formatVnet(buf, off);
    off += VNET_HDR_LEN;
    len -= VNET_HDR_LEN;
  }
  if (len < ETH_HDR_LEN) return `${out}truncated ethernet header: ${len} bytes`;
  out += `${macToString(buf, off + 6)} > ${macToString(buf, off)}, `;

  let type = readU16(buf, off + 12);
  let p = off + ETH_HDR_LEN;
  let rem = len - ETH_HDR_LEN;
  for (let tags = 0; type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ; tags++) {
    const name = type === ETHERTYPE_QINQ ? 's-vlan' : 'vlan';
    if (tags === MAX_TAGS) return `${out}${name} [malformed: more than ${MAX_TAGS} tags]`;
    if (rem < 4) return `${out}${name} [truncated: ${rem} bytes]`;
    const tci = readU16(buf, p);
    out += `${name} ${tci & 0xfff} pcp ${tci >>> 13}${tci & 0x1000 ? ' dei' : ''}, `;
    type = readU16(buf, p + 2);
    p += 4;
    rem -= 4;
  }

  switch (type) {
    case ETHERTYPE_ARP: return out + formatArp(buf, p, rem);
    case ETHERTYPE_IPV4: return out + formatIpv4(buf, p, rem);
    case ETHERTYPE_IPV6: return `${out}IPv6 len ${rem}`;
    default:
      if (type < 0x0600) return `${out}802.3 length ${type} len ${rem}`;
      return `${out}ethertype 0x${type.toString(16).padStart(4, '0')} len ${rem}`;
  }
}

function formatVnet(buf: Uint8Array, off: number): string {
  const v = vnetView;
  v.reset(buf, off, VNET_HDR_LEN);
  const parts: string[] = [];
  const flags = v.flags;
  if (flags & VNET_F_NEEDS_CSUM) parts.push(`csum ${v.csumStart}+${v.csumOffset}`);
  if (flags & VNET_F_DATA_VALID) parts.push('data-valid');
  const other = flags & ~(VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID);
  if (other) parts.push(`flags 0x${other.toString(16)}`);
  const gt = v.gsoType;
  if (gt !== 0) {
    const kind = gt & ~VNET_GSO_ECN;
    const name = kind === VNET_GSO_TCPV4 ? 'tcpv4' : kind === VNET_GSO_UDP ? 'udp' : kind === VNET_GSO_TCPV6 ? 'tcpv6' : `type ${kind}`;
    parts.push(`gso ${name}${gt & VNET_GSO_ECN ? ' ecn' : ''} size ${v.gsoSize} hdrlen ${v.hdrLen}`);
  } else if (v.gsoSize !== 0 || v.hdrLen !== 0) {
    parts.push(`size ${v.gsoSize} hdrlen ${v.hdrLen}`);
  }
  if (!(flags & VNET_F_NEEDS_CSUM) && (v.csumStart !== 0 || v.csumOffset !== 0)) {
    parts.push(`csum-fields ${v.csumStart}+${v.csumOffset}`);
  }
  return parts.length === 0 ? '' : `vnet(${parts.join(', ')}) `;
}

function formatArp(buf: Uint8Array, off: number, len: number): string {
  const a = arpView;
  if (!a.reset(buf, off, len)) return `ARP [truncated: ${len} bytes]`;
  if (!a.isEthernetIpv4) {
    return `ARP [malformed: htype ${a.htype} ptype 0x${a.ptype.toString(16).padStart(4, '0')} hlen ${a.hlen} plen ${a.plen}]`;
  }
  const spa = ipToString(a.spa);
  const tpa = ipToString(a.tpa);
  switch (a.op) {
    case ARP_OP_REQUEST: return `ARP request who-has ${tpa} tell ${spa}`;
    case ARP_OP_REPLY: return `ARP reply ${spa} is-at ${macToString(buf, a.shaOffset)}`;
    default: return `ARP op ${a.op} ${spa} > ${tpa}`;
  }
}

function protoName(p: number): string {
  switch (p) {
    case IPPROTO_ICMP: return 'ICMP';
    case IPPROTO_TCP: return 'TCP';
    case IPPROTO_UDP: return 'UDP';
    default: return `proto ${p}`;
  }
}

function formatIpv4(buf: Uint8Array, off: number, len: number): string {
  const ip = ipView;
  if (!ip.reset(buf, off, len)) return `IPv4 [truncated: ${len} bytes]`;
  const reason = ip.checkReason();
  switch (reason) {
    case IPV4_OK: break;
    case IPV4_BAD_VERSION: return `IPv4 [malformed: version ${ip.version}]`;
    case IPV4_BAD_IHL: return `IPv4 [malformed: ihl ${ip.ihl}]`;
    case IPV4_HDR_TRUNCATED: return `IPv4 [truncated: header ${ip.headerLength} > ${len} bytes]`;
    case IPV4_BAD_TOTAL_LENGTH:
      return `IPv4 ${ipToString(ip.src)} > ${ipToString(ip.dst)} [malformed: total length ${ip.totalLength}, header ${ip.headerLength}, ${len} bytes]`;
    default: return `IPv4 [malformed: reason ${reason}]`;
  }
  const src = ipToString(ip.src);
  const dst = ipToString(ip.dst);
  const proto = ip.protocol;
  const l4 = ip.payloadOffset;
  const l4Len = ip.payloadLength;
  if (ip.isFragment) {
    return `IPv4 ${src} > ${dst} ${protoName(proto)} fragment id ${ip.id} off ${ip.fragOffset * 8} len ${l4Len}${ip.moreFragments ? ' more' : ''}`;
  }
  switch (proto) {
    case IPPROTO_ICMP: return `IPv4 ${src} > ${dst} ${formatIcmp(buf, l4, l4Len)}`;
    case IPPROTO_TCP: {
      const t = tcpView;
      if (!t.reset(buf, l4, l4Len)) return `IPv4 ${src} > ${dst} TCP [truncated: ${l4Len} bytes]`;
      const head = `IPv4 ${src}.${t.srcPort} > ${dst}.${t.dstPort} TCP`;
      if (!t.check()) return `${head} [malformed: data offset ${t.dataOffset}, ${l4Len} bytes]`;
      return `${head} [${tcpFlagsToString(t.flags)}] len ${t.payloadLength}`;
    }
    case IPPROTO_UDP: {
      const u = udpView;
      if (!u.reset(buf, l4, l4Len)) return `IPv4 ${src} > ${dst} UDP [truncated: ${l4Len} bytes]`;
      const head = `IPv4 ${src}.${u.srcPort} > ${dst}.${u.dstPort} UDP`;
      if (!u.check()) return `${head} [malformed: length ${u.length}, ${l4Len} bytes]`;
      return `${head} len ${u.payloadLength}`;
    }
    default: return `IPv4 ${src} > ${dst} proto ${proto} len ${l4Len}`;
  }
}

function formatIcmp(buf: Uint8Array, off: number, len: number): string {
  const c = icmpView;
  if (!c.reset(buf, off, len)) return `ICMP [truncated: ${len} bytes]`;
  switch (c.type) {
    case ICMP_ECHO_REQUEST: return `ICMP echo request id ${c.id} seq ${c.seq}`;
    case ICMP_ECHO_REPLY: return `ICMP echo reply id ${c.id} seq ${c.seq}`;
    case ICMP_DEST_UNREACH: return `ICMP unreachable code ${c.code}`;
    case ICMP_TIME_EXCEEDED: return `ICMP time exceeded code ${c.code}`;
    default: return `ICMP type ${c.type} code ${c.code}`;
  }
}
