// DNS in the worker: a UDP query to a gateway for a name the switch knows is answered right
// here, in place in the receive buffer, and sent back out of the port it came from — no
// thread hop, no copy. Names the switch does not know are handed to the main thread (the
// gateway stage punts them), which forwards them upstream. Same rules as the main thread's
// server: both use dataplane/dns/answer.ts.
//
// The names come with the router's configuration snapshot (dataplane/tables/l3.ts): each
// worker rebuilds its own registry. Rotation of a name's addresses is per worker; a client
// is always served by the worker that owns its port, so each client sees strict rotation.

import { DnsAnswerer, DNS_RESULTS } from '../dns/answer';
import { DnsRegistry, type DnsOrder } from '../dns/registry';
import type { Packet } from '../packet';
import { EthernetView } from '../wire/ethernet';
import { IPV4_MIN_HDR_LEN, Ipv4View, writeIpv4Header } from '../wire/ipv4';
import { UDP_HDR_LEN, UdpView } from '../wire/udp';
import { VNET_HDR_LEN, writeEmptyVnetHdr } from '../wire/vnet';

/** The DNS part of the router's snapshot. */
export interface DnsSnapshot {
  nets: { id: number; name: string; order: DnsOrder }[];
  endpoints: { network: string; container: string; ip: string; aliases: string[] }[];
}

/** Answers fit one unfragmented frame: MTU 1500 - IPv4 20 - UDP 8. */
const MAX_UDP_ANSWER = 1472;
const ANSWER_TTL = 64;
const TWO32 = 4294967296;

export const DNS_ANSWERED = 0;
export const DNS_DROPPED = 1;
export const DNS_PUNT = 2;

export class WorkerDns {
  private readonly answerer = new DnsAnswerer(new DnsRegistry(), { maxUdpSize: MAX_UDP_ANSWER });
  /** (network id, client IPv4) -> the networks of that client's container. */
  private clients = new Map<number, string[]>();
  private netNames: string[] = [];
  /** Where the counters go (this worker's slots in the shared stats), or null. */
  private readonly out: Float64Array | null;
  // Views over the query being answered (reused: no allocation per query beyond the answer).
  private readonly eth = new EthernetView();
  private readonly ip = new Ipv4View();
  private readonly udp = new UdpView();

  constructor(out: Float64Array | null = null) {
    this.out = out;
  }

  load(s: DnsSnapshot): void {
    const reg = new DnsRegistry();
    const names: string[] = [];
    for (const n of s.nets) { reg.setNetwork(n.name, n.order); names[n.id] = n.name; }
    const byContainer = new Map<string, string[]>();
    for (const e of s.endpoints) {
      reg.addEndpoint(e.network, e.container, e.ip, e.aliases);
      const list = byContainer.get(e.container);
      if (list) list.push(e.network); else byContainer.set(e.container, [e.network]);
    }
    const ids = new Map(s.nets.map((n) => [n.name, n.id]));
    const clients = new Map<number, string[]>();
    for (const e of s.endpoints) {
      const id = ids.get(e.network);
      if (id === undefined) continue;
      const [a, b, c, d] = e.ip.split('.').map(Number);
      clients.set(id * TWO32 + ((a << 24) | (b << 16) | (c << 8) | d) >>> 0, byContainer.get(e.container)!);
    }
    this.answerer.registry = reg;
    this.clients = clients;
    this.netNames = names;
  }

  get counters(): Record<string, number> {
    return this.answerer.counters;
  }

  /**
   * The UDP query in p (IPv4 at p.l3Off, UDP at l4Off, packet ending at end) from a client
   * of network p.netId: answer it in place (DNS_ANSWERED: p is now the answer, to be sent
   * back out of p.inPort), drop it (DNS_DROPPED) or leave it for the main thread (DNS_PUNT:
   * not our name, or a packet shape we do not rewrite in place).
   */
  answer(p: Packet, l4Off: number, end: number, gwMacHi: number, gwMacLo: number): number {
    const b = p.buf;
    const ip = this.ip;
    const udp = this.udp;
    ip.reset(b, p.l3Off, end - p.l3Off);
    if (ip.headerLength !== IPV4_MIN_HDR_LEN) return DNS_PUNT; // IP options: let the main thread build a clean answer
    udp.reset(b, l4Off, end - l4Off);
    if (!udp.check()) return DNS_PUNT;
    const src = ip.src;
    const nets = this.clients.get(p.netId * TWO32 + src) ?? this.netOnly(p.netId);
    const out = this.answerer.answer(b.subarray(udp.payloadOffset, l4Off + udp.length), nets, 'udp');
    this.publish();
    if (out.kind === 'forward') return DNS_PUNT;
    if (out.kind === 'drop') return DNS_DROPPED;
    const reply = out.bytes;
    if (reply.length > MAX_UDP_ANSWER || udp.payloadOffset + reply.length > b.length) return DNS_DROPPED;
    // IPv4: a fresh header back to the client (TTL 64, no fragment bits), keeping the id and TOS.
    const newUdpLen = UDP_HDR_LEN + reply.length;
    const total = IPV4_MIN_HDR_LEN + newUdpLen;
    writeIpv4Header(b, p.l3Off, ip.dst, src, ip.protocol, total, ANSWER_TTL, ip.id, 0, ip.tos);
    // UDP: payload, ports swapped, length, checksum over the pseudo-header and all.
    b.set(reply, udp.payloadOffset);
    const sport = udp.srcPort;
    udp.setSrcPort(udp.dstPort);
    udp.setDstPort(sport);
    udp.setLength(newUdpLen);
    udp.fillChecksum(p.l3Off);
    // Ethernet: back to the client, from the gateway.
    const eth = this.eth;
    eth.reset(b, p.ethOff, p.ethLen);
    eth.setDstHiLo(p.srcHi, p.srcLo);
    eth.setSrcHiLo(gwMacHi, gwMacLo);
    p.ethLen = p.l3Off - p.ethOff + total;
    p.len = p.ethLen + (p.vnet ? VNET_HDR_LEN : 0);
    if (p.vnet) writeEmptyVnetHdr(b, p.off);
    p.out = p.inPort;
    return DNS_ANSWERED;
  }

  private netOnly(net: number): string[] {
    const name = this.netNames[net];
    return name === undefined ? [] : [name];
  }

  private publish(): void {
    const o = this.out;
    if (o === null) return;
    const c = this.answerer.counters;
    for (let i = 0; i < DNS_RESULTS.length; i++) o[i] = c[DNS_RESULTS[i]];
  }
}
