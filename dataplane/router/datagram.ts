// The IPv4 datagram the router is deciding about, read once per frame by read() into plain
// fields that every router module uses: addresses, ports (ICMP echo: the identifier in both),
// TCP flags, ICMP type, where L4 starts and where the datagram ends. One per gateway stage;
// its views are reused, never allocated per frame.

import { DROP } from '../drops';
import { isIcmpErrorType } from '../nat';
import type { Packet } from '../packet';
import { ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, IcmpView } from '../wire/icmp';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, Ipv4View } from '../wire/ipv4';
import { TcpView } from '../wire/tcp';
import { UdpView } from '../wire/udp';
import { VNET_HDR_LEN, VnetHdrView } from '../wire/vnet';

export class Datagram {
  /** The IPv4 header of the frame last read (valid after read() returned true). */
  readonly ip = new Ipv4View();
  private readonly tcp = new TcpView();
  private readonly udp = new UdpView();
  private readonly icmp = new IcmpView();
  private readonly vnet = new VnetHdrView();
  proto = 0;
  src = 0;
  dst = 0;
  sport = 0;
  dport = 0;
  tcpFlags = 0;
  /** ICMP type; -1 when not ICMP. */
  icmpType = -1;
  l4Off = 0;
  /** l3Off + total length: the Ethernet padding left out. */
  end = 0;

  /**
   * Read the IPv4 packet of p and its ports; false = dropped (p's reason set): a malformed
   * or truncated header (bad-ip), or a fragment (ip-fragment: no reassembly).
   */
  read(p: Packet): boolean {
    const ip = this.ip;
    if (!ip.reset(p.buf, p.l3Off, p.ethOff + p.ethLen - p.l3Off) || !ip.check()) { p.dropWith(DROP['bad-ip']); return false; }
    const end = this.end = p.l3Off + ip.totalLength;
    const proto = this.proto = ip.protocol;
    this.src = ip.src;
    this.dst = ip.dst;
    this.sport = 0;
    this.dport = 0;
    this.tcpFlags = 0;
    this.icmpType = -1;
    const l4 = this.l4Off = ip.payloadOffset;
    if (ip.isFragment) { p.dropWith(DROP['ip-fragment']); return false; }
    if (proto === IPPROTO_TCP) {
      const t = this.tcp;
      if (!t.reset(p.buf, l4, end - l4)) { p.dropWith(DROP['bad-ip']); return false; }
      this.sport = t.srcPort;
      this.dport = t.dstPort;
      this.tcpFlags = t.flags;
    } else if (proto === IPPROTO_UDP) {
      const u = this.udp;
      if (!u.reset(p.buf, l4, end - l4)) { p.dropWith(DROP['bad-ip']); return false; }
      this.sport = u.srcPort;
      this.dport = u.dstPort;
    } else if (proto === IPPROTO_ICMP) {
      const c = this.icmp;
      if (!c.reset(p.buf, l4, end - l4)) { p.dropWith(DROP['bad-ip']); return false; }
      const type = this.icmpType = c.type;
      if (type === ICMP_ECHO_REQUEST || type === ICMP_ECHO_REPLY) this.sport = this.dport = c.id;
    }
    return true;
  }

  /** An ICMP error: it quotes the packet it is about, and no ICMP error is sent about it. */
  get icmpError(): boolean {
    return this.icmpType >= 0 && isIcmpErrorType(this.icmpType);
  }

  /** The frame's L4 checksum is CHECKSUM_PARTIAL (virtio-net NEEDS_CSUM): NAT folds only the addresses into it. */
  partial(p: Packet): boolean {
    return p.vnet && this.vnet.reset(p.buf, p.off, VNET_HDR_LEN) && this.vnet.needsCsum;
  }
}
