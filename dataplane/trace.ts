// Tracing: what each stage decided for one frame, as one line per stage. The stages know
// nothing of tracing: a TextTracer reads the Packet after each stage (what the stage
// recorded, or the verdict it gave) and says it in words. With no tracer set, the pipeline
// pays one null check per stage.
//
// A dry run (StageContext.dryRun) goes through the same stages without side effects: no
// learning; the learn line says what would have been learned.

import { Packet, OUT_DROP, OUT_FLOOD, OUT_LOCAL } from './packet';
import { L3_NAMES } from './stages/gateway';
import { DROP_REASONS } from './drops';
import type { L3Context, StageContext } from './stages/stage';
import { Pipeline, type Tracer } from './pipeline';
import type { Fdb } from './tables/fdb';
import type { PortTable } from './tables/ports';
import { macToStringHiLo } from './wire/mac';
import { formatFrame } from './wire/format';

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
  frame: string;
  steps: TraceStep[];
  verdict: { kind: 'unicast' | 'flood' | 'drop' | 'local'; ports: string[]; reason?: string };
}

export class TextTracer implements Tracer {
  readonly steps: TraceStep[] = [];
  private readonly names: TraceNames;

  constructor(names: TraceNames) {
    this.names = names;
  }

  step(stage: string, p: Packet, ctx: StageContext): void {
    this.steps.push({ stage, text: this.describe(stage, p, ctx) });
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
        const known = ctx.fdb.lookup(p.netId, p.vlan, p.srcHi, p.srcLo);
        const what = known < 0 ? `new: ${src} on ${this.names.port(p.inPort)}`
          : known === p.inPort ? `refresh: ${src} on ${this.names.port(p.inPort)}`
          : `move: ${src} from ${this.names.port(known)} to ${this.names.port(p.inPort)}`;
        return ctx.dryRun ? `(dry run, not learned) ${what}` : what;
      }
      case 'gateway':
        return describeGateway(p, this.names);
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

/** What the router did, in words (the codes are L3_* in stages/gateway.ts). */
function describeGateway(p: Packet, names: TraceNames): string {
  const what = L3_NAMES[p.l3] ?? `#${p.l3}`;
  if (p.l3 === 0) return 'pass (not for the gateway)';
  if (p.out === OUT_LOCAL) return `${what}: consumed by the switch`;
  if (p.out === OUT_FLOOD) return `${what}: to network ${names.network(p.netId)} (flood)`;
  if (p.out >= 0) return `${what}: -> ${names.port(p.out)}`;
  return `${what}: continue`;
}

/** The ports a flooded frame goes to: every port of its network but the one it came in on. */
function floodPorts(p: Packet, ctx: StageContext): number[] {
  return Array.from(ctx.ports.portsOf(p.netId)).filter((id) => id !== p.inPort);
}

/** The verdict of a traced frame, in names. */
function verdictOf(p: Packet, ctx: StageContext, names: TraceNames): TraceResult['verdict'] {
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
 * arrived on `inPort`, without side effects: nothing is learned, nothing is sent.
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
  p.reset(frame, 0, frame.length, false, inPort, 0);
  pipeline.run(p, ctx);
  return { frame: text, steps: tracer.steps, verdict: verdictOf(p, ctx, names) };
}
