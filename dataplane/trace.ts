// Tracing: what each stage decided for one frame, as one line per stage. The stages know
// nothing of tracing: a TextTracer reads the Packet after each stage (what the stage
// recorded, or the verdict it gave) and says it in words. With no tracer set, the pipeline
// pays one null check per stage.
//
// A dry run (StageContext.dryRun) goes through the same stages without side effects: no
// learning; the learn line says what would have been learned. With the router's tables
// (StageContext.l3) the gateway line says what the router did or would do, in the words of
// the router module that decided it (dataplane/router/outcome.ts: each outcome is registered
// with its wording); a translated packet shows its flow before and after:
// `conntrack: A:a > B:b => A':a' > B':b' -> PORT`.

import { Packet, OUT_DROP, OUT_FLOOD, OUT_LOCAL } from './packet';
import { DROP_REASONS } from './drops';
import type { L3Context, StageContext } from './stages/stage';
import { Pipeline, type Tracer } from './pipeline';
import { LEARN_FAILED, LEARN_MOVED, LEARN_NEW, type Fdb } from './tables/fdb';
import type { PortTable } from './tables/ports';
import { UPLINK_NET } from './tables/neigh';
import { describeOutcome, type TracedFlow } from './router/outcome';
import { macToStringHiLo } from './wire/mac';
import { formatFrame } from './wire/format';
import { ipToString } from './wire/ip';
import { ETHERTYPE_IPV4 } from './wire/ethernet';
import { ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, IcmpView } from './wire/icmp';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, Ipv4View } from './wire/ipv4';
import { TcpView } from './wire/tcp';
import { UdpView } from './wire/udp';
import { VlanView } from './wire/vlan';
import { describeImpair, type ImpairNote } from './impair/impair';

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
        // The wording of each outcome lives with the router module that decides it.
        this.after.read(p);
        return describeOutcome({ p, ctx, before: this.before, after: this.after, egress: gatewayEgress(p, this.names) });
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
      vlanView.reset(p.buf, p.ethOff, p.ethLen);
      return ` (vid ${vid} over another tag 0x${vlanView.innerEtherType.toString(16)})`;
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

const vlanView = new VlanView();
const ipView = new Ipv4View();
const tcpView = new TcpView();
const udpView = new UdpView();
const icmpView = new IcmpView();

/** An IPv4 flow read from a frame: addresses, and ports / ICMP identifier or type. */
class Flow implements TracedFlow {
  ok = false;
  proto = 0;
  src = 0;
  dst = 0;
  /** TCP/UDP ports; ICMP echo: the identifier in both; -1 when absent (other protocols, non-first fragments). */
  sport = -1;
  dport = -1;
  icmpType = -1;
  icmpCode = -1;

  /** Lenient: any IPv4 header with 8 bytes of L4 after it, as an ICMP error quotes it, gives the ports. */
  read(p: Packet): void {
    this.ok = false;
    if (p.etherType !== ETHERTYPE_IPV4) return;
    const b = p.buf;
    const end = p.ethOff + p.ethLen;
    const ip = ipView;
    if (!ip.reset(b, p.l3Off, end - p.l3Off) || ip.version !== 4) return;
    const l4 = ip.payloadOffset;
    this.proto = ip.protocol;
    this.src = ip.src;
    this.dst = ip.dst;
    this.sport = this.dport = this.icmpType = this.icmpCode = -1;
    if (ip.fragOffset === 0 && l4 + 8 <= end) {
      if (this.proto === IPPROTO_TCP) {
        tcpView.reset(b, l4, end - l4); // the ports are in the first 8 bytes
        this.sport = tcpView.srcPort;
        this.dport = tcpView.dstPort;
      } else if (this.proto === IPPROTO_UDP) {
        udpView.reset(b, l4, end - l4);
        this.sport = udpView.srcPort;
        this.dport = udpView.dstPort;
      } else if (this.proto === IPPROTO_ICMP) {
        icmpView.reset(b, l4, end - l4);
        this.icmpType = icmpView.type;
        this.icmpCode = icmpView.code;
        if (this.icmpType === ICMP_ECHO_REPLY || this.icmpType === ICMP_ECHO_REQUEST) this.sport = this.dport = icmpView.id;
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

// --- VXLAN (docs/VXLAN.md): what the overlay did with a traced frame ---

/**
 * The VXLAN lines of a live trace: `decap` for a frame that came out of a tunnel (with its
 * VTEP), `encap` for one sent to a MAC the FDB holds behind a remote VTEP. A flood into an
 * overlay port needs no line: its verdict names the overlay port (every peer gets a copy).
 */
export function vxlanSteps(p: Packet, ctx: StageContext): TraceStep[] {
  const out: TraceStep[] = [];
  if (p.vtep !== 0) out.push({ stage: 'vxlan', text: `decap from VTEP ${vtepText(p.vtep)}` });
  const arp = p.netId >= 0 ? ctx.arpProxy?.[p.netId]?.traceText(p) : undefined;
  if (arp != null) out.push({ stage: 'vxlan', text: arp });
  if (p.out >= 0 && p.netId >= 0) {
    const vtep = ctx.fdb.lookupVtep(p.netId, 0, p.dstHi, p.dstLo);
    if (vtep !== 0 && ctx.fdb.lookup(p.netId, 0, p.dstHi, p.dstLo) === p.out) out.push({ stage: 'vxlan', text: `encap to VTEP ${vtepText(vtep)}` });
  }
  return out;
}

/**
 * The impairment lines of a live trace: what `vsw impair` did to the frame on a port,
 * `impair  vswab12 (web) out: delayed 20.3 ms` (in: on arrival, before the stages above).
 */
export function impairSteps(notes: readonly ImpairNote[], names: TraceNames): TraceStep[] {
  return notes.map((n) => ({ stage: 'impair', text: `${names.port(n.port)} ${n.dir}: ${describeImpair(n.flags, n.delay)}` }));
}

function vtepText(a: number): string {
  return `${(a >>> 24) & 255}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}
