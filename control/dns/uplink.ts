// DNS queries out of the switch's uplink: the forwarder's UDP tries leave the way a
// container's query would (docs/L3.md, DNS), not through the daemon's own routes.
//
// A try is a frame the main thread builds (dataplane/l3/frames.ts writeUdpFrame): from the
// uplink MAC and address, from a free source port picked at random in the forwarder's range
// (tables/conntrack.ts CT_FORWARDER_PORT_MIN..MAX, a range masquerade never allocates), to
// the resolver; next hop = the resolver when it is on the uplink subnet, else the uplink
// gateway, its MAC from the neighbour table. It goes out with host.sendFrame on the uplink
// port (dataplane/egress.ts: tagged when the uplink is). A neighbour that is not known is
// asked by ARP (the neighbour table's rate limit, as router/route.ts does) and the try waits
// for the answer, polling the shared table every POLL_MS, within the try's own timeout.
//
// The answer comes back through the dataplane: UDP from the uplink to the uplink address and
// a port of the range that a try waits on (marked in the shared conntrack table,
// forwarderPortUse), with no connection, is punted to the main thread (router/nat.ts,
// outcome dns-upstream-answer), and control/router.ts hands it to deliver(). It reaches the
// try waiting on that source port only if it comes from the try's resolver address and port,
// and is that try's answer only if its ID and question match (upstream.ts); everything else
// is dropped and counted as unmatched. An ICMP port unreachable about a query (punted the
// same way) ends its try at once, as it does a connected socket's. IP fragments never get here (the dataplane drops
// them, ip-fragment, as it does for containers): an answer bigger than the uplink's MTU is
// lost and the try times out.

import { randomInt } from 'node:crypto';
import { writeArpRequest, writeUdpFrame } from '../../dataplane/l3/frames';
import type { Neigh } from '../../dataplane/tables/neigh';
import { NEIGH_STALE, UPLINK_NET } from '../../dataplane/tables/neigh';
import { CT_FORWARDER_PORT_MAX, CT_FORWARDER_PORT_MIN, type Conntrack } from '../../dataplane/tables/conntrack';
import { ETHERTYPE_IPV4, ETHERTYPE_VLAN, ETH_HDR_LEN } from '../../dataplane/wire/ethernet';
import { IPPROTO_ICMP, IPPROTO_UDP, Ipv4View } from '../../dataplane/wire/ipv4';
import { ICMP_DEST_UNREACH } from '../../dataplane/wire/icmp';
import { ICMP_PORT_UNREACH, ICMP_PROT_UNREACH } from '../../dataplane/l3/frames';
import { ICMP_QUOTE_OK, icmpErrorQuote, type NatTuple } from '../../dataplane/nat';
import { UdpView } from '../../dataplane/wire/udp';
import { readU16 } from '../../dataplane/wire/bytes';
import { parseIp } from '../ipam';
import { newTransportCounters, type UdpTransport, type Upstream } from './upstream';

/** How often a try waiting for its next hop's MAC looks at the neighbour table again. */
export const POLL_MS = 5;
/** Random picks of a source port before scanning the range for a free one. */
const PORT_PICKS = 8;

/** The uplink as the forwarder uses it (addresses as uint32, MAC as hi 16 / lo 32 bits). */
export interface UplinkAddress {
  portId: number;
  ip: number;
  mask: number;
  gateway: number;
  macHi: number;
  macLo: number;
}

/** What the transport uses of the dataplane host (workers/host.ts). */
export interface UplinkTransportHost {
  neigh: Pick<Neigh, 'lookup' | 'solicit' | 'hi' | 'lo' | 'state'>;
  /** Where the ports in use are marked, for the workers (they punt only answers to those). */
  ct: Pick<Conntrack, 'forwarderPortUse'>;
  now(): number;
  sendFrame(portId: number, frame: Uint8Array): boolean;
}

/** One try under way. */
interface Pending {
  sport: number;
  dst: number;
  dport: number;
  nextHop: number;
  msg: Uint8Array;
  accept: (m: Uint8Array) => boolean;
  fail: () => void;
  /** Waiting for the next hop's MAC (nothing sent yet). */
  waiting: boolean;
}

export class UplinkUdpTransport implements UdpTransport {
  readonly name = 'uplink';
  readonly counters = newTransportCounters();
  /** Tries under way, by source port. */
  private readonly pending = new Map<number, Pending>();
  private readonly waiting = new Set<Pending>();
  private poll: NodeJS.Timeout | undefined;
  private readonly buf = new Uint8Array(70_000);
  private readonly ip = new Ipv4View();
  private readonly udp = new UdpView();
  private readonly quoted: NatTuple = { proto: 0, src: 0, dst: 0, sport: 0, dport: 0 };

  constructor(private readonly host: UplinkTransportHost, private readonly uplink: UplinkAddress,
    private readonly range: { min: number; max: number } = { min: CT_FORWARDER_PORT_MIN, max: CT_FORWARDER_PORT_MAX }) {}

  open(up: Upstream, msg: Uint8Array, accept: (m: Uint8Array) => boolean, fail: () => void): () => void {
    const sport = this.freePort();
    if (sport < 0) { this.counters.failed++; throw new Error('no free source port in the DNS forwarder range'); }
    const dst = parseIp(up.host) >>> 0;
    const u = this.uplink;
    const nextHop = ((dst & u.mask) >>> 0) === ((u.ip & u.mask) >>> 0) ? dst : u.gateway;
    const t: Pending = { sport, dst, dport: up.port, nextHop, msg, accept, fail, waiting: false };
    this.pending.set(sport, t);
    this.host.ct.forwarderPortUse(sport, true);
    if (!this.trySend(t)) {
      t.waiting = true;
      this.waiting.add(t);
      this.poll ??= setInterval(() => this.retryWaiting(), POLL_MS);
      this.poll.unref();
    }
    return () => this.close(t);
  }

  /** Tries under way (a gauge, and for tests). */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * A frame the dataplane punted from the uplink (Ethernet, IPv4, UDP to the uplink address
   * and a port of the range): to its try, or dropped and counted as unmatched.
   */
  deliver(frame: Uint8Array): void {
    const c = this.counters;
    let l3 = ETH_HDR_LEN;
    if (frame.length < l3) { c.unmatched++; return; }
    let type = readU16(frame, 12);
    if (type === ETHERTYPE_VLAN && frame.length >= l3 + 4) { type = readU16(frame, 16); l3 += 4; }
    const ip = this.ip;
    const udp = this.udp;
    if (type !== ETHERTYPE_IPV4 || !ip.reset(frame, l3, frame.length - l3) || !ip.check()
      || ip.isFragment || (ip.dst >>> 0) !== (this.uplink.ip >>> 0)) { c.unmatched++; return; }
    const l4 = ip.payloadOffset;
    const end = l3 + ip.totalLength;
    if (ip.protocol === IPPROTO_ICMP) { this.icmpError(frame, l3, l4, end); return; }
    if (ip.protocol !== IPPROTO_UDP) { c.unmatched++; return; }
    if (!udp.reset(frame, l4, end - l4) || !udp.check()) { c.unmatched++; return; }
    const t = this.pending.get(udp.dstPort);
    if (t === undefined || t.waiting || (ip.src >>> 0) !== t.dst || udp.srcPort !== t.dport) { c.unmatched++; return; }
    const payload = frame.subarray(udp.payloadOffset, udp.payloadOffset + udp.payloadLength);
    if (t.accept(payload)) c.matched++;
    else c.unmatched++;
  }

  /**
   * An ICMP error about one of our queries: port or protocol unreachable ends its try at once
   * (as ECONNREFUSED does a connected socket's); any other error is ignored (counted
   * unmatched), as Linux ignores them for UDP sockets without IP_RECVERR.
   */
  private icmpError(frame: Uint8Array, l3: number, l4: number, end: number): void {
    const q = this.quoted;
    const t = icmpErrorQuote(frame, l3, end, q) === ICMP_QUOTE_OK && q.proto === IPPROTO_UDP ? this.pending.get(q.sport) : undefined;
    const code = end - l4 >= 2 ? frame[l4 + 1] : -1;
    if (t === undefined || t.waiting || frame[l4] !== ICMP_DEST_UNREACH || (code !== ICMP_PORT_UNREACH && code !== ICMP_PROT_UNREACH)
      || q.src !== (this.uplink.ip >>> 0) || q.dst !== t.dst || q.dport !== t.dport) { this.counters.unmatched++; return; }
    this.counters.refused++;
    t.fail();
  }

  /** End every try (the forwarder is closing). */
  stop(): void {
    for (const t of [...this.pending.values()]) t.fail();
    if (this.poll) { clearInterval(this.poll); this.poll = undefined; }
  }

  // ---- internals

  /** A random free port of the range, or -1. */
  private freePort(): number {
    const { min, max } = this.range;
    for (let i = 0; i < PORT_PICKS; i++) {
      const p = randomInt(min, max + 1);
      if (!this.pending.has(p)) return p;
    }
    const n = max - min + 1;
    const start = randomInt(0, n);
    for (let i = 0; i < n; i++) {
      const p = min + ((start + i) % n);
      if (!this.pending.has(p)) return p;
    }
    return -1;
  }

  /** Send t's query if its next hop's MAC is known (true); else ask for it by ARP (false). */
  private trySend(t: Pending): boolean {
    const h = this.host;
    const u = this.uplink;
    const now = h.now();
    if (!h.neigh.lookup(UPLINK_NET, t.nextHop, now)) {
      this.solicit(t.nextHop, now);
      return false;
    }
    const macHi = h.neigh.hi;
    const macLo = h.neigh.lo;
    // A stale entry is still used (like Linux), and asked again so that it stays known.
    if (h.neigh.state === NEIGH_STALE) this.solicit(t.nextHop, now);
    const n = writeUdpFrame(this.buf, 0, u.macHi, u.macLo, macHi, macLo, u.ip, t.dst, t.sport, t.dport, t.msg);
    if (n === 0 || !h.sendFrame(u.portId, this.buf.subarray(0, n))) {
      this.counters.failed++;
      queueMicrotask(t.fail);
      return true;
    }
    this.counters.sent++;
    return true;
  }

  /** One ARP request for ip from the uplink address, if the neighbour table's rate limit allows it. */
  private solicit(ip: number, now: number): void {
    const h = this.host;
    const u = this.uplink;
    if (!h.neigh.solicit(UPLINK_NET, ip, now)) return;
    const n = writeArpRequest(this.buf, 0, u.macHi, u.macLo, u.ip, ip);
    if (n > 0) h.sendFrame(u.portId, this.buf.subarray(0, n));
  }

  private retryWaiting(): void {
    for (const t of [...this.waiting]) {
      if (this.trySend(t)) { t.waiting = false; this.waiting.delete(t); }
    }
    if (this.waiting.size === 0 && this.poll) { clearInterval(this.poll); this.poll = undefined; }
  }

  private close(t: Pending): void {
    if (this.pending.get(t.sport) === t) {
      this.pending.delete(t.sport);
      this.host.ct.forwarderPortUse(t.sport, false);
    }
    if (t.waiting) {
      // Ended (its timeout) before the next hop answered ARP: nothing was sent.
      this.counters.failed++;
      t.waiting = false;
      this.waiting.delete(t);
      if (this.waiting.size === 0 && this.poll) { clearInterval(this.poll); this.poll = undefined; }
    }
  }
}
