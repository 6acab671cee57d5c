// Tracing: what each stage decided for one frame, as one line per stage. The stages know
// nothing of tracing: a TextTracer reads the Packet after each stage (what the stage
// recorded, or the verdict it gave) and says it in words. With no tracer set, the pipeline
// pays one null check per stage.
//
// A dry run (StageContext.dryRun) goes through the same stages without side effects: no
// learning; the learn line says what would have been learned. With the router's tables
// (StageContext.l3) the gateway line says what the router did or would do; a translated
// packet shows its flow before and after: `conntrack: A:a > B:b => A':a' > B':b' -> PORT`.

import { Packet, OUT_DROP, OUT_FLOOD, OUT_LOCAL } from './packet';
import {
  L3_ARP_CONSUMED, L3_ARP_LEARNED, L3_ARP_REPLY, L3_CT, L3_CT_NEW, L3_DNS_ANSWER, L3_DNS_PUNT, L3_HOST_CT, L3_ICMP_ERROR, L3_NAMES,
  L3_NONE, L3_NO_CT, L3_PING, L3_ROUTED,
} from './stages/gateway';
import { DROP_REASONS } from './drops';
import type { L3Context, StageContext } from './stages/stage';
import { Pipeline, type Tracer } from './pipeline';
import { LEARN_FAILED, LEARN_MOVED, LEARN_NEW, type Fdb } from './tables/fdb';
import type { PortTable } from './tables/ports';
import { UPLINK_NET } from './tables/neigh';
import { macToStringHiLo } from './wire/mac';
import { formatFrame } from './wire/format';
import { readU16, readU32 } from './wire/bytes';
import { ipToString } from './wire/ip';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4 } from './wire/ethernet';
import { ARP_LEN, ARP_OP_REQUEST } from './wire/arp';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from './wire/ipv4';

/** Names for ports and networks in trace lines (the dataplane knows only numbers). */
export interface TraceNames {
  port(id: number): string;
  network(id: number): string;
}

export interface TraceStep {
  stage: string;
  text: string;
}

export interface TraceResult {
  /** Live traces: when, where it arrived, which worker. */
  time?: string;
  port?: string;
  worker?: number;
  frame: string;
  steps: TraceStep[];
  verdict: { kind: 'unicast' | 'flood' | 'drop' | 'local'; ports: string[]; reason?: string };
}

export class TextTracer implements Tracer {
  readonly steps: TraceStep[] = [];
  private readonly names: TraceNames;
  // The frame's IPv4 flow as the gateway got it (read after every other stage: a few byte
  // reads, no string), and as it left it.
  private readonly before = new Flow();
  private readonly after = new Flow();

  constructor(names: TraceNames) {
    this.names = names;
  }

  step(stage: string, p: Packet, ctx: StageContext): void {
    this.steps.push({ stage, text: this.describe(stage, p, ctx) });
    if (stage !== 'gateway') this.before.read(p);
  }

  private describe(stage: string, p: Packet, ctx: StageContext): string {
    // The pipeline stops at the first verdict, so a drop seen here is this stage's.
    if (p.out === OUT_DROP) return `drop: ${DROP_REASONS[p.drop]}${stage === 'ingress' ? vlanWhy(p, ctx) : ''}`;
    const src = macToStringHiLo(p.srcHi, p.srcLo);
    const dst = macToStringHiLo(p.dstHi, p.dstLo);
    switch (stage) {
      case 'parse':
        return `ok: ${src} > ${dst}, ethertype 0x${p.etherType.toString(16).padStart(4, '0')}, ${p.ethLen} bytes`;
      case 'ingress':
        return `port ${this.names.port(p.inPort)}: ${tagText(p)}network ${this.names.network(p.netId)}, vlan ${p.vlan}${p.inTci >= 0 ? ' (tag removed)' : ''}`;
      case 'learn': {
        // The uplink is not a switch port: nothing is learned from it (stages/learn.ts).
        if (p.netId === UPLINK_NET) return 'skipped: the uplink is not a switch port (its MACs are neighbours)';
        if (!ctx.dryRun && p.learned >= 0) {
          // Live: what learning did (the table already holds the result).
          const on = this.names.port(p.inPort);
          return p.learned === LEARN_NEW ? `new: ${src} on ${on}` : p.learned === LEARN_MOVED ? `move: ${src} to ${on}`
            : p.learned === LEARN_FAILED ? `not learned (table full): ${src}` : `refresh: ${src} on ${on}`;
        }
        const known = ctx.fdb.lookup(p.netId, p.vlan, p.srcHi, p.srcLo);
        const what = known < 0 ? `new: ${src} on ${this.names.port(p.inPort)}`
          : known === p.inPort ? `refresh: ${src} on ${this.names.port(p.inPort)}`
          : `move: ${src} from ${this.names.port(known)} to ${this.names.port(p.inPort)}`;
        return ctx.dryRun ? `(dry run, not learned) ${what}` : what;
      }
      case 'gateway':
        this.after.read(p);
        return describeGateway(p, ctx, this.names, this.before, this.after);
      case 'forward':
        if (p.out === OUT_FLOOD) {
          const members = floodPorts(p, ctx);
          const why = p.dstMulticast ? (p.dstHi === 0xffff && p.dstLo === 0xffffffff ? 'broadcast' : 'multicast') : `unknown unicast ${dst}`;
          return `flood (${why}) to ${members.length} port(s): ${members.map((id) => this.names.port(id) + egressText(p, ctx, id)).join(', ') || '-'}`;
        }
        return `known unicast ${dst} -> ${this.names.port(p.out)}${egressText(p, ctx, p.out)}`;
      default:
        return p.out >= 0 ? `-> ${this.names.port(p.out)}` : 'ok';
    }
  }
}

/** The tag a frame arrived with, for the ingress line: '' when untagged. */
function tagText(p: Packet): string {
  if (p.inTci < 0) return '';
  const vid = p.inTci & 0xfff;
  const pcp = `pcp ${p.inTci >>> 13}${(p.inTci >>> 12) & 1 ? ' dei' : ''}`;
  return vid === 0 ? `priority-tagged (vid 0, ${pcp}) -> ` : `tagged vid ${vid} (${pcp}) -> `;
}

/** Why ingress dropped a frame for its VLAN: the tag and what the port carries ('' for other drops). */
function vlanWhy(p: Packet, ctx: StageContext): string {
  const vid = p.inTci & 0xfff;
  switch (DROP_REASONS[p.drop]) {
    case 'untagged-on-trunk':
      return ` (${p.inTci >= 0 ? 'priority-tagged' : 'untagged'}; port carries ${carried(p.inPort, ctx)})`;
    case 'vlan-not-member':
    case 'tagged-on-access':
      return ` (vid ${vid}; port carries ${carried(p.inPort, ctx)})`;
    case 'qinq': {
      if (p.etherType === 0x88a8) return ' (802.1ad outer tag 0x88a8)';
      const inner = (p.buf[p.ethOff + 16] << 8) | p.buf[p.ethOff + 17];
      return ` (vid ${vid} over another tag 0x${inner.toString(16)})`;
    }
    case 'runt-after-untag':
      return ` (${p.ethLen} bytes with the tag)`;
    default:
      return '';
  }
}

/** What a port carries, e.g. 'untagged vlan 10, tagged 20,30' (trace text). */
function carried(port: number, ctx: StageContext): string {
  const ports = ctx.ports;
  if (port < 0 || port >= ports.maxPorts || !ports.has(port)) return 'nothing';
  const v = ports.vlansOf(port);
  const parts: string[] = [];
  if (v.untagged >= 0) parts.push(`untagged vlan ${v.pvid}`);
  if (v.tagged.length > 0) parts.push(`tagged ${v.tagged.map((t) => t.vid).join(',')}`);
  return parts.join(', ') || 'nothing';
}

/** How a port sends the frame's network: '' untagged, ' [tagged vid N]' on a trunk. */
function egressText(p: Packet, ctx: StageContext, port: number): string {
  const vid = ctx.ports.egressVid(port, p.netId);
  return vid > 0 ? ` [tagged vid ${vid}${p.prio >>> 13 ? ` pcp ${p.prio >>> 13}` : ''}]` : '';
}

/** An IPv4 flow read from a frame: addresses, and ports / ICMP identifier or type. */
class Flow {
  ok = false;
  proto = 0;
  src = 0;
  dst = 0;
  /** TCP/UDP ports; ICMP echo: the identifier in both; -1 when absent (other protocols, non-first fragments). */
  sport = -1;
  dport = -1;
  icmpType = -1;
  icmpCode = -1;

  read(p: Packet): void {
    this.ok = false;
    if (p.etherType !== ETHERTYPE_IPV4) return;
    const b = p.buf;
    const o = p.l3Off;
    const end = p.ethOff + p.ethLen;
    if (o + 20 > end || b[o] >>> 4 !== 4) return;
    const l4 = o + ((b[o] & 0xf) << 2);
    this.proto = b[o + 9];
    this.src = readU32(b, o + 12);
    this.dst = readU32(b, o + 16);
    this.sport = this.dport = this.icmpType = this.icmpCode = -1;
    if ((readU16(b, o + 6) & 0x1fff) === 0 && l4 + 8 <= end) {
      if (this.proto === IPPROTO_TCP || this.proto === IPPROTO_UDP) {
        this.sport = readU16(b, l4);
        this.dport = readU16(b, l4 + 2);
      } else if (this.proto === IPPROTO_ICMP) {
        this.icmpType = b[l4];
        this.icmpCode = b[l4 + 1];
        if (this.icmpType === 0 || this.icmpType === 8) this.sport = this.dport = readU16(b, l4 + 4);
      }
    }
    this.ok = true;
  }

  /** `10.0.0.2:40000 > 10.0.0.1:53`, `10.0.0.2 > 10.0.0.1 icmp id 7`, `... icmp 3/3`, `... proto 47`. */
  text(): string {
    const s = ipToString(this.src);
    const d = ipToString(this.dst);
    if (this.proto === IPPROTO_ICMP) {
      if (this.sport >= 0) return `${s} > ${d} icmp id ${this.sport}`;
      return this.icmpType >= 0 ? `${s} > ${d} icmp ${this.icmpType}/${this.icmpCode}` : `${s} > ${d} icmp`;
    }
    if (this.sport >= 0) return `${s}:${this.sport} > ${d}:${this.dport}`;
    return `${s} > ${d} proto ${this.proto}`;
  }
}

/** Where the frame goes after the gateway, as the end of its line. */
function gatewayEgress(p: Packet, names: TraceNames): string {
  if (p.out >= 0) return ` -> ${names.port(p.out)}`;
  if (p.out === OUT_FLOOD) return ` -> network ${names.network(p.netId)} (flood)`;
  if (p.out === OUT_LOCAL) return ' (consumed by the switch)';
  return ', continue';
}

/**
 * What the router did, in words (the codes are L3_* in stages/gateway.ts). before/after:
 * the IPv4 flow as the gateway got it and as it left it.
 */
function describeGateway(p: Packet, ctx: StageContext, names: TraceNames, before: Flow, after: Flow): string {
  const what = L3_NAMES[p.l3] ?? `#${p.l3}`;
  const l3 = ctx.l3;
  switch (p.l3) {
    case L3_NONE:
      return 'pass (not for the gateway)';
    case L3_ARP_REPLY:
    case L3_ARP_CONSUMED:
    case L3_ARP_LEARNED: {
      const b = p.buf;
      const a = p.l3Off;
      if (p.etherType !== ETHERTYPE_ARP || a + ARP_LEN > p.ethOff + p.ethLen) return `${what}:${gatewayEgress(p, names)}`;
      const sha = macToStringHiLo(readU16(b, a + 8), readU32(b, a + 10));
      const spa = ipToString(readU32(b, a + 14));
      if (p.l3 === L3_ARP_REPLY) {
        // A dry run leaves the request as it was; a live run has turned it into the reply.
        const asked = readU16(b, a + 6) === ARP_OP_REQUEST ? readU32(b, a + 24) : readU32(b, a + 14);
        const net = l3?.table.byNet[p.netId];
        const u = l3?.table.uplink;
        const mac = net !== undefined ? macToStringHiLo(net.gwMacHi, net.gwMacLo)
          : u ? macToStringHiLo(u.macHi, u.macLo) : '?';
        return `${what}: ${ipToString(asked)} is-at ${mac}${gatewayEgress(p, names)}`;
      }
      const learn = ctx.dryRun ? ' (dry run, not learned)' : '';
      if (p.l3 === L3_ARP_CONSUMED) return `${what}: ${spa} is-at ${sha}${learn}, to the switch (consumed)`;
      return `${what}: ${spa} is-at ${sha}${learn}${gatewayEgress(p, names)}`;
    }
    case L3_PING:
      return `${what}: ${before.ok ? before.text() : 'echo request'} answered${gatewayEgress(p, names)}`;
    case L3_DNS_PUNT:
      return `${what}: ${before.ok ? before.text() : 'query'} to the DNS server (main thread)`;
    case L3_DNS_ANSWER:
      return `${what}: ${before.ok ? before.text() : 'query'} answered by this worker${gatewayEgress(p, names)}`;
    case L3_NO_CT:
      return `${what}: ${wouldCreate(p, l3, before)} (dry run: no connection created)`;
    case L3_CT:
    case L3_CT_NEW:
    case L3_HOST_CT:
    case L3_ICMP_ERROR:
    case L3_ROUTED: {
      if (!before.ok || !after.ok) return `${what}:${gatewayEgress(p, names)}`;
      const was = before.text();
      const now = after.text();
      return `${what}: ${was}${now === was ? '' : ` => ${now}`}${gatewayEgress(p, names)}`;
    }
    default:
      return `${what}:${gatewayEgress(p, names)}`;
  }
}

/** The connection a dry run would have created, in words (the checks of stages/gateway.ts). */
function wouldCreate(p: Packet, l3: L3Context | null, f: Flow): string {
  if (!f.ok) return 'a connection';
  const flow = f.text();
  if (l3 === null) return flow;
  const t = l3.table;
  const net = t.byNet[p.netId];
  if (p.netId !== UPLINK_NET && net !== undefined && f.proto === IPPROTO_TCP && f.dst === net.gwIp && f.dport === 53) {
    return `dns over tcp ${flow} to ${ipToString(net.hostIp)}:53`;
  }
  if (p.netId === UPLINK_NET || t.isSwitchIp(f.dst)) {
    const m = f.proto === IPPROTO_ICMP ? undefined : t.mapping(f.proto, f.dst, f.dport);
    return m !== undefined ? `published port ${flow} to ${ipToString(m.ip)}:${m.port}` : `published port ${flow}`;
  }
  return t.uplink !== null ? `masquerade ${flow} as ${ipToString(t.uplink.ip)}` : `masquerade ${flow}`;
}

/** The ports a flooded frame goes to: every port of its network but the one it came in on. */
function floodPorts(p: Packet, ctx: StageContext): number[] {
  return Array.from(ctx.ports.portsOf(p.netId)).filter((id) => id !== p.inPort);
}

/** The verdict of a traced frame, in names. */
export function verdictOf(p: Packet, ctx: StageContext, names: TraceNames): TraceResult['verdict'] {
  if (p.out === OUT_DROP) return { kind: 'drop', ports: [], reason: DROP_REASONS[p.drop] };
  if (p.out === OUT_LOCAL) return { kind: 'local', ports: [] };
  if (p.out === OUT_FLOOD) return { kind: 'flood', ports: floodPorts(p, ctx).map((id) => names.port(id)) };
  return { kind: 'unicast', ports: [names.port(p.out)] };
}

/** One line of text for a whole trace (CLI output). */
export function formatTrace(r: TraceResult): string {
  const w = Math.max(...r.steps.map((s) => s.stage.length), 5);
  return [`frame   ${r.frame}`, ...r.steps.map((s) => `${s.stage.padEnd(w + 2)}${s.text}`)].join('\n') + '\n';
}

/**
 * Run one Ethernet frame (no virtio-net header) through a fresh pipeline as if it had
 * arrived on `inPort`, without side effects: nothing is learned, nothing is sent, and the
 * caller's frame is left as it was.
 */
export function traceDryRun(frame: Uint8Array, inPort: number,
  tables: { fdb: Fdb; ports: PortTable; now: number; l3?: L3Context | null }, names: TraceNames): TraceResult {
  const ctx: StageContext = { fdb: tables.fdb, ports: tables.ports, now: tables.now, dryRun: true, l3: tables.l3 ?? null };
  const tracer = new TextTracer(names);
  const pipeline = new Pipeline();
  pipeline.tracer = tracer;
  const p = new Packet();
  // Described before the run: ingress removes a VLAN tag in place.
  const text = formatFrame(frame, 0, frame.length);
  // The stages may rewrite the frame in place, even in a dry run (the router's NAT: that is
  // how the gateway line shows the new addresses): run a copy, not the caller's frame.
  const work = frame.slice();
  p.reset(work, 0, work.length, false, inPort, 0);
  pipeline.run(p, ctx);
  return { frame: text, steps: tracer.steps, verdict: verdictOf(p, ctx, names) };
}
