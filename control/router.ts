// The control-plane side of the switch's router (docs/L3.md): the uplink port, the router
// configuration the workers get (gateways, published ports), the embedded DNS server (it
// answers the queries the workers punt, and listens for DNS over TCP on each network's host
// TAP address; with an uplink it forwards out of the uplink, dns/uplink.ts, whose answers the
// workers punt too), the uplink gateway kept resolved, and the listings behind `vsw neigh` and
// `vsw conntrack`. The engine owns networks and containers and calls sync() after every
// change; this module turns that view into dataplane tables.

import type * as net from 'node:net';
import type { DataplaneHost } from '../workers/host';
import type { CapturedFrame } from '../workers/capture-ring';
import type { L3Snapshot, L3MappingSpec } from '../dataplane/tables/l3';
import { UPLINK_NET, NEIGH_REACHABLE, NEIGH_STALE, NEIGH_INCOMPLETE } from '../dataplane/tables/neigh';
import { NO_NET } from '../dataplane/tables/ports';
import { writeArpRequest, writeUdpFrame } from '../dataplane/l3/frames';
import { macHi, macLo, macToStringHiLo, parseMac } from '../dataplane/wire/mac';
import { readU16, readU32 } from '../dataplane/wire/bytes';
import {
  DnsRegistry, DnsServer, HostUdpTransport, UplinkUdpTransport, parseUpstream, readResolvConf, type TransportCounters, type Upstream,
} from './dns';
import { isForwarderPort, CT_FORWARDER_PORT_MAX, CT_FORWARDER_PORT_MIN } from '../dataplane/tables/conntrack';
import { DNS_RESULTS } from '../dataplane/dns/answer';
import type { ConntrackEntryInfo, DnsOrder, NeighEntryInfo, PortMapping, UplinkInfo } from './types';
import * as ipam from './ipam';
import * as netns from './netns';
import { InvalidArgumentError, VswError } from './errors';

/** The engine's view of what the router serves. */
export interface RouterView {
  networks: {
    name: string; id: number; subnet: string; gateway: string; internal: boolean; icc: boolean; dnsOrder: DnsOrder;
    hostPortId: number;
  }[];
  endpoints: { container: string; network: string; ip: string; portId: number; aliases: string[] }[];
  /** Published ports of each container, on its first network. */
  published: { container: string; network: string; ip: string; ports: PortMapping[] }[];
}

export interface UplinkOptions {
  device: string;
  ip: string;       // CIDR
  gateway: string;
  /** 802.1Q VLAN id of the uplink's frames, both ways (absent: untagged). */
  vlan?: number;
}

const DNS_PORT = 53;
const IPPROTO = { tcp: 6, udp: 17 } as const;
const PROTO_NAMES: Record<number, 'tcp' | 'udp' | 'icmp'> = { 6: 'tcp', 17: 'udp', 1: 'icmp' };
const KIND_NAMES = ['masquerade', 'dnat', 'dns'] as const;

function ipNum(text: string): number {
  return ipam.parseIp(text) >>> 0;
}

function macParts(mac: string): { hi: number; lo: number } {
  const b = parseMac(mac);
  return { hi: macHi(b, 0), lo: macLo(b, 0) };
}

/** What the router uses of the dataplane host: the uplink port, its tables, L3 snapshots,
 *  punted frames and frames it sends itself. */
export type RouterHost = Pick<DataplaneHost,
  'addPort' | 'ct' | 'neigh' | 'now' | 'onPunt' | 'puntLost' | 'sendFrame' | 'setL3' | 'workerDnsCounters'>;

export class Router {
  private readonly host: RouterHost;
  private readonly uplinkOpts: UplinkOptions | undefined;
  private uplink: UplinkInfo | null = null;
  private uplinkPrefix = 0;
  readonly registry = new DnsRegistry();
  readonly dns: DnsServer;
  private view: RouterView = { networks: [], endpoints: [], published: [] };
  /** Published-port rule ids, stable while the rule is unchanged: key container/index. */
  private readonly mappingIds = new Map<string, { id: number; sig: string }>();
  private nextMappingId = 1;
  /** DNS-over-TCP listeners, per network name. */
  private readonly tcpListeners = new Map<string, { ip: string; server: net.Server }>();
  private keepTimer: NodeJS.Timeout | undefined;
  private readonly frameBuf = new Uint8Array(70_000);
  /** The resolvers as configured (--dns or resolv.conf), before a transport is chosen. */
  private upstreams: Upstream[];
  /** UDP forwarding through the host's own stack: no uplink, or a loopback resolver. */
  private readonly hostDns = new HostUdpTransport();
  /** UDP forwarding out of the uplink (null: no uplink). */
  private uplinkDns: UplinkUdpTransport | null = null;

  constructor(host: RouterHost, opts: { uplink?: UplinkOptions; upstreams: Upstream[] }) {
    this.host = host;
    this.uplinkOpts = opts.uplink;
    this.upstreams = opts.upstreams.slice();
    // Answers go out as one unfragmented frame: at most MTU 1500 - IP 20 - UDP 8 bytes.
    this.dns = new DnsServer({ registry: this.registry, upstreams: opts.upstreams, maxUdpSize: 1472 });
  }

  /** Open the uplink port (if any) and start answering DNS. */
  async start(): Promise<void> {
    const u = this.uplinkOpts;
    if (u) {
      const cidr = ipam.parsePrefixLoose(u.ip);
      if (!cidr || !u.ip.includes('/')) throw new InvalidArgumentError(`--uplink-ip '${u.ip}': expected a.b.c.d/len`);
      this.uplinkPrefix = cidr.prefixLen;
      const ip = u.ip.split('/')[0];
      if (!ipam.cidrContains(cidr, u.gateway) || u.gateway === ip) {
        throw new InvalidArgumentError(`--uplink-gateway ${u.gateway} must be another address in ${cidr.text}`);
      }
      if (!(await netns.linkExists(u.device))) throw new InvalidArgumentError(`--uplink ${u.device}: no such interface`);
      await netns.linkUp(u.device);
      const mac = await netns.linkMac(u.device);
      // --uplink-vlan: the uplink carries its one network tagged (a trunk of one VLAN).
      const port = await this.host.addPort({
        name: u.device, kind: 'afpacket', netId: UPLINK_NET,
        vlans: u.vlan ? { untagged: NO_NET, pvid: 0, tagged: [{ vid: u.vlan, net: UPLINK_NET }] } : undefined,
      });
      this.uplink = { device: u.device, ip: `${ip}/${cidr.prefixLen}`, gateway: u.gateway, mac, portId: port.id };
      if (u.vlan) this.uplink.vlan = u.vlan;
      const m = macParts(mac);
      this.uplinkDns = new UplinkUdpTransport(this.host, {
        portId: port.id, ip: ipNum(ip), mask: ipam.maskOf(cidr.prefixLen) >>> 0, gateway: ipNum(u.gateway), macHi: m.hi, macLo: m.lo,
      });
    }
    this.setUpstreams(this.upstreams);
    this.host.onPunt((frames) => this.onPunt(frames));
    this.keepTimer = setInterval(() => this.keepNeighbours(), 1000);
    this.keepTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.keepTimer) clearInterval(this.keepTimer);
    this.uplinkDns?.stop();
    for (const l of this.tcpListeners.values()) l.server.close();
    this.tcpListeners.clear();
    await this.dns.close();
  }

  /**
   * The resolvers the DNS server forwards to, each with its path: out of the uplink when
   * the switch has one (a container's query would go that way), except a loopback resolver
   * (127/8: the host's own, e.g. systemd-resolved), which only the host's stack can reach.
   */
  setUpstreams(upstreams: Upstream[]): void {
    this.upstreams = upstreams.map((u) => ({ host: u.host, port: u.port }));
    this.dns.setUpstreams(this.upstreams.map((u) => ({ ...u, transport: this.pathTo(u.host) })));
  }

  /**
   * The uplink, unless there is none, or the resolver is the host's own (127/8) or inside a vsw
   * network (a container: the host reaches it through the network's TAP; out of the uplink
   * it is not).
   */
  private pathTo(host: string): UplinkUdpTransport | HostUdpTransport {
    if (this.uplinkDns === null || host.startsWith('127.')) return this.hostDns;
    const inNet = this.view.networks.some((n) => ipam.cidrContains(ipam.parseCidr(n.subnet, 32), host));
    return inNet ? this.hostDns : this.uplinkDns;
  }

  uplinkInfo(): UplinkInfo | null {
    return this.uplink;
  }

  /** The uplink subnet (so that no network is created over it). */
  uplinkSubnet(): string | undefined {
    if (!this.uplink) return undefined;
    const c = ipam.parsePrefixLoose(this.uplink.ip);
    return c?.text;
  }

  /** Addresses a published port may name: every gateway and the uplink. */
  switchAddresses(): string[] {
    const out = this.view.networks.map((n) => n.gateway);
    if (this.uplink) out.push(this.uplink.ip.split('/')[0]);
    return out;
  }

  /** Check a container's -p list against the others' before it is created. */
  checkPublish(container: string, network: { name: string; internal: boolean } | undefined, ports: PortMapping[]): void {
    if (ports.length === 0) return;
    if (!network) throw new InvalidArgumentError('-p needs a network (not none, host or container:)');
    if (network.internal) throw new InvalidArgumentError(`network '${network.name}' is internal: it has no published ports`);
    const addrs = new Set(['0.0.0.0', ...this.switchAddresses()]);
    const mine = new Set<string>();
    const uplinkIp = this.uplink?.ip.split('/')[0];
    for (const m of ports) {
      if (!addrs.has(m.hostIp)) {
        throw new InvalidArgumentError(`-p ${m.hostIp}:${m.hostPort}: ${m.hostIp} is not an address of the switch (${[...addrs].join(', ')})`);
      }
      if (uplinkIp !== undefined && m.proto === 'udp' && isForwarderPort(m.hostPort) && (m.hostIp === '0.0.0.0' || m.hostIp === uplinkIp)) {
        throw new InvalidArgumentError(`-p ${m.hostPort}/udp: UDP ports ${CT_FORWARDER_PORT_MIN}-${CT_FORWARDER_PORT_MAX} of the uplink address are the DNS forwarder's`);
      }
      const key = `${m.proto}/${m.hostPort}`;
      if (mine.has(key)) throw new InvalidArgumentError(`-p: ${m.hostPort}/${m.proto} is published twice`);
      mine.add(key);
      for (const o of this.view.published) {
        if (o.container === container) continue;
        for (const x of o.ports) {
          if (x.proto === m.proto && x.hostPort === m.hostPort && (x.hostIp === '0.0.0.0' || m.hostIp === '0.0.0.0' || x.hostIp === m.hostIp)) {
            throw new VswError(`port ${m.hostPort}/${m.proto} is already published by container '${o.container}'`, 'E_CONFLICT', 409);
          }
        }
      }
    }
  }

  /**
   * Apply the engine's view: the DNS registry, the DNS-over-TCP listeners, the workers'
   * router tables; flows of published ports that are gone or changed are dropped.
   */
  async sync(view: RouterView): Promise<void> {
    this.view = view;
    this.setUpstreams(this.upstreams); // a resolver's path depends on the networks
    // DNS names
    const wanted = new Set(view.networks.map((n) => n.name));
    for (const n of view.networks) this.registry.setNetwork(n.name, n.dnsOrder);
    for (const name of this.registeredNets) if (!wanted.has(name)) this.registry.removeNetwork(name);
    this.registeredNets = wanted;
    const eps = new Set(view.endpoints.map((e) => `${e.network}/${e.container}`));
    for (const key of this.registeredEps) {
      if (!eps.has(key)) { const [n, c] = key.split('/'); this.registry.removeEndpoint(n, c); }
    }
    for (const e of view.endpoints) this.registry.addEndpoint(e.network, e.container, e.ip, e.aliases);
    // Ask each new endpoint for its MAC now, so that the first packet routed to it (a
    // published port, a reply) does not meet an empty neighbour entry.
    const fresh = view.endpoints.filter((e) => !this.registeredEps.has(`${e.network}/${e.container}`));
    this.registeredEps = eps;
    // Published ports: stable ids; a changed or removed rule loses its connections.
    const mappings: L3MappingSpec[] = [];
    const live = new Set<string>();
    for (const pub of view.published) {
      const n = view.networks.find((x) => x.name === pub.network);
      if (!n) continue;
      pub.ports.forEach((m, i) => {
        const key = `${pub.container}/${pub.network}/${i}`;
        const sig = `${pub.network}|${pub.ip}|${m.hostIp}|${m.hostPort}|${m.containerPort}|${m.proto}`;
        let rec = this.mappingIds.get(key);
        if (rec && rec.sig !== sig) { this.host.ct.removeMapping(rec.id); rec = undefined; }
        if (!rec) { rec = { id: this.nextMappingId++, sig }; this.mappingIds.set(key, rec); }
        live.add(key);
        mappings.push({
          id: rec.id, proto: IPPROTO[m.proto], hostIp: m.hostIp === '0.0.0.0' ? 0 : ipNum(m.hostIp),
          hostPort: m.hostPort, net: n.id, ip: ipNum(pub.ip), port: m.containerPort,
        });
      });
    }
    for (const [key, rec] of this.mappingIds) {
      if (!live.has(key)) { this.host.ct.removeMapping(rec.id); this.mappingIds.delete(key); }
    }
    const snap: L3Snapshot = {
      nets: view.networks.map((n) => {
        const cidr = ipam.parseCidr(n.subnet, 32);
        const hostIp = ipam.hostPortIp(n.subnet);
        const gw = macParts(ipam.macFromIp(n.gateway));
        const hm = macParts(ipam.macFromIp(hostIp));
        return {
          id: n.id, gwIp: ipNum(n.gateway), gwMacHi: gw.hi, gwMacLo: gw.lo, subnet: cidr.base >>> 0,
          mask: ipam.maskOf(cidr.prefixLen) >>> 0, internal: n.internal, icc: n.icc, hostPort: n.hostPortId,
          hostIp: ipNum(hostIp), hostMacHi: hm.hi, hostMacLo: hm.lo,
        };
      }),
      uplink: this.uplink ? (() => {
        const u = this.uplink;
        const ip = u.ip.split('/')[0];
        const mask = ipam.maskOf(this.uplinkPrefix) >>> 0;
        const m = macParts(u.mac);
        return { port: u.portId, ip: ipNum(ip), subnet: (ipNum(ip) & mask) >>> 0, mask, macHi: m.hi, macLo: m.lo, gateway: ipNum(u.gateway) };
      })() : null,
      mappings,
      dns: {
        nets: view.networks.map((n) => ({ id: n.id, name: n.name, order: n.dnsOrder })),
        endpoints: view.endpoints.map((e) => ({ network: e.network, container: e.container, ip: e.ip, aliases: e.aliases })),
      },
    };
    await this.host.setL3(snap);
    for (const e of fresh) this.solicitEndpoint(e.network, e.ip, e.portId);
    await this.syncTcpListeners();
  }

  private registeredNets = new Set<string>();
  private registeredEps = new Set<string>();

  /** The networks a client at ip (in network `net`) belongs to: what its DNS may see. */
  private clientNets(ip: string, net: string): string[] {
    const ep = this.view.endpoints.find((e) => e.network === net && e.ip === ip);
    if (!ep) return [net];
    return this.view.endpoints.filter((e) => e.container === ep.container).map((e) => e.network);
  }

  private async syncTcpListeners(): Promise<void> {
    const want = new Map(this.view.networks.filter((n) => n.hostPortId >= 0).map((n) => [n.name, ipam.hostPortIp(n.subnet)]));
    for (const [name, l] of this.tcpListeners) {
      if (want.get(name) !== l.ip) { l.server.close(); this.tcpListeners.delete(name); }
    }
    for (const [name, ip] of want) {
      if (this.tcpListeners.has(name)) continue;
      try {
        const server = await this.dns.listenTcp(ip, DNS_PORT, (remote) => this.clientNets(remote, name));
        this.tcpListeners.set(name, { ip, server });
      } catch (e) {
        process.stderr.write(`vsw: DNS over TCP for network ${name} on ${ip}:53: ${(e as Error).message}\n`);
      }
    }
  }

  // ------------------------------------------------------------------ DNS over UDP

  /** Punted frames: from the uplink, answers to the forwarder (dns/uplink.ts); else queries to a gateway. */
  private onPunt(frames: CapturedFrame[]): void {
    for (const f of frames) {
      if (this.uplinkDns !== null && this.uplink !== null && f.port === this.uplink.portId) this.uplinkDns.deliver(f.data);
      else this.answerUdp(f);
    }
  }

  /** A DNS query a worker punted: Ethernet + IPv4 + UDP to gateway:53. */
  private answerUdp(f: CapturedFrame): void {
    const d = f.data;
    if (d.length < 14 + 20 + 8) return;
    const ipOff = 14;
    const ihl = (d[ipOff] & 0xf) * 4;
    const udp = ipOff + ihl;
    const totalLen = readU16(d, ipOff + 2);
    if (udp + 8 > d.length || ipOff + totalLen > d.length) return;
    const srcIp = readU32(d, ipOff + 12) >>> 0;
    const gwIp = readU32(d, ipOff + 16) >>> 0;
    const sport = readU16(d, udp);
    const udpLen = readU16(d, udp + 4);
    if (udpLen < 8 || udp + udpLen > ipOff + totalLen) return;
    const payload = d.slice(udp + 8, udp + udpLen);
    const net = this.view.networks.find((n) => ipNum(n.gateway) === gwIp);
    if (!net) return;
    const clientMacHi = macHi(d, 6);
    const clientMacLo = macLo(d, 6);
    const nets = this.clientNets(ipam.formatIp(srcIp), net.name);
    void this.dns.handle(payload, nets, 'udp').then((reply) => {
      if (!reply) return;
      const gw = macParts(ipam.macFromIp(net.gateway));
      const len = writeUdpFrame(this.frameBuf, 0, gw.hi, gw.lo, clientMacHi, clientMacLo, gwIp, srcIp, DNS_PORT, sport, reply);
      // In the asking network (tagged when it asked through a trunk).
      this.host.sendFrame(f.port, this.frameBuf.subarray(0, len), net.id);
    });
  }

  // ------------------------------------------------------------------ uplink gateway

  private keepTick = 0;

  /**
   * Every second: the uplink gateway; every 10 s: each endpoint whose entry is no longer
   * REACHABLE is asked again (one ARP request; its answer refreshes the entry). A packet
   * routed to a container that has been quiet for minutes (a published port, a reply) then
   * finds its MAC, instead of being dropped while the switch asks (no queue: docs/L3.md).
   */
  private keepNeighbours(): void {
    this.keepGatewayResolved();
    if (++this.keepTick % 10 !== 0 || this.view.endpoints.length === 0) return;
    const now = this.host.now();
    const neigh = this.host.neigh;
    const ids = new Map(this.view.networks.map((n) => [n.name, n.id]));
    for (const e of this.view.endpoints) {
      const id = ids.get(e.network);
      if (id === undefined || (neigh.lookup(id, ipNum(e.ip), now) && neigh.state === NEIGH_REACHABLE)) continue;
      this.solicitEndpoint(e.network, e.ip, e.portId);
    }
  }

  /** Keep the uplink gateway's MAC known, so that the first packet out is not lost. */
  private keepGatewayResolved(): void {
    const u = this.uplink;
    if (!u) return;
    const now = this.host.now();
    const gw = ipNum(u.gateway);
    const neigh = this.host.neigh;
    if (neigh.lookup(UPLINK_NET, gw, now) && neigh.state === NEIGH_REACHABLE) return;
    if (!neigh.solicit(UPLINK_NET, gw, now)) return;
    const m = macParts(u.mac);
    const len = writeArpRequest(this.frameBuf, 0, m.hi, m.lo, ipNum(u.ip.split('/')[0]), gw);
    this.host.sendFrame(u.portId, this.frameBuf.subarray(0, len));
  }

  private solicitEndpoint(network: string, ip: string, portId: number): void {
    const n = this.view.networks.find((x) => x.name === network);
    if (!n || portId < 0) return;
    const gw = macParts(ipam.macFromIp(n.gateway));
    const len = writeArpRequest(this.frameBuf, 0, gw.hi, gw.lo, ipNum(n.gateway), ipNum(ip));
    this.host.sendFrame(portId, this.frameBuf.subarray(0, len));
  }

  // ------------------------------------------------------------------ listings

  neigh(netNames: Map<number, string>, only?: string): NeighEntryInfo[] {
    const now = this.host.now();
    const states: Record<number, NeighEntryInfo['state']> = {
      [NEIGH_REACHABLE]: 'reachable', [NEIGH_STALE]: 'stale', [NEIGH_INCOMPLETE]: 'incomplete',
    };
    return this.host.neigh.list(now)
      .map((e) => ({
        network: e.net === UPLINK_NET ? 'uplink' : (netNames.get(e.net) ?? `#${e.net}`),
        ip: ipam.formatIp(e.ip),
        mac: e.state === NEIGH_REACHABLE || e.state === NEIGH_STALE ? macToStringHiLo(e.macHi, e.macLo) : '',
        state: states[e.state] ?? 'failed',
        ageSeconds: e.ageSeconds,
      }))
      .filter((e) => only === undefined || e.network === only)
      .sort((a, b) => a.network.localeCompare(b.network) || ipNum(a.ip) - ipNum(b.ip));
  }

  conntrack(netNames: Map<number, string>): ConntrackEntryInfo[] {
    const now = this.host.now();
    const t = (x: { src: number; dst: number; sport: number; dport: number }) => ({
      src: ipam.formatIp(x.src), dst: ipam.formatIp(x.dst), sport: x.sport, dport: x.dport,
    });
    return this.host.ct.list(now).map((e) => ({
      proto: PROTO_NAMES[e.proto] ?? 'tcp',
      state: e.state,
      orig: t(e.orig),
      reply: t(e.reply),
      kind: KIND_NAMES[e.kind] ?? 'masquerade',
      network: netNames.get(e.net) ?? `#${e.net}`,
      expiresInSeconds: Math.max(0, e.expires - now),
      packets: e.packets,
      bytes: e.bytes,
    }));
  }

  counters(): {
    neigh: ReturnType<DataplaneHost['neigh']['counters']>; conntrack: ReturnType<DataplaneHost['ct']['counters']>;
    dns: Record<string, number>; puntLost: number; dnsUpstream: Record<'uplink' | 'host', TransportCounters>;
  } {
    // Local names are answered by the workers, the rest (and TCP) by the main thread.
    const dns: Record<string, number> = { ...this.dns.counters };
    this.host.workerDnsCounters().forEach((v, i) => { dns[DNS_RESULTS[i]] = (dns[DNS_RESULTS[i]] ?? 0) + v; });
    const none: TransportCounters = { sent: 0, matched: 0, unmatched: 0, failed: 0, refused: 0 };
    const dnsUpstream = { uplink: { ...(this.uplinkDns?.counters ?? none) }, host: { ...this.hostDns.counters } };
    return { neigh: this.host.neigh.counters(), conntrack: this.host.ct.counters(), dns, puntLost: this.host.puntLost(), dnsUpstream };
  }

  /** A container or network went away: its connections go too. */
  dropFlowsOfNet(netId: number): void {
    this.host.ct.removeNet(netId);
    this.host.neigh.flushNet(netId);
  }
}

/** Upstream resolvers for the embedded DNS: --dns, else the daemon's /etc/resolv.conf. */
export function upstreamsFrom(dns: string[] | undefined): Upstream[] {
  return dns && dns.length > 0 ? dns.map(parseUpstream) : readResolvConf();
}
