// Taps: what `vsw capture` and live `vsw trace` ask a worker to copy out, and the tracer
// that does it. Each session has a bit (its id, 0..31); a record in the capture ring carries
// the bits of every session it is for, so one copy serves them all.
//
//   capture, stage -1   the port's frames on the wire, both directions (the loop copies
//                       them around recv/send, as before), when the filter matches; port
//                       -1: every port's (capture --all-ports; each record names its port
//                       and direction);
//   capture, stage S    frames received on the port, as they are after pipeline stage S
//                       (e.g. after `learn`: before the router; after `gateway`: after
//                       NAT), when the filter matches the frame at that point;
//   trace               frames received on the port (or any port of the network, or any
//                       port) whose filter matches on arrival: every stage's decision, as
//                       one JSON TraceResult record.
//
// With no session, the pipeline's tracer is null: one null check per stage, nothing else.

import type { Tracer } from '../dataplane/pipeline';
import type { Packet } from '../dataplane/packet';
import type { StageContext } from '../dataplane/stages/stage';
import { STAGE_NAMES } from '../dataplane/stages/order';
import { compileFilter, type CompiledFilter } from '../dataplane/filter';
import { impairSteps, TextTracer, verdictOf, vxlanSteps, type TraceNames, type TraceResult } from '../dataplane/trace';
import type { ImpairNote } from '../dataplane/impair/impair';
import { formatFrame } from '../dataplane/wire/format';
import { DIR_RX, DIR_TRACE, type CaptureRing } from './capture-ring';

/** One session, as the main thread describes it (workers/protocol.ts TapsMsg). */
export interface TapSpec {
  /** 0..31: the session's bit in record tags. */
  sid: number;
  kind: 'capture' | 'trace';
  /** Port id; -1 = any (trace only). */
  port: number;
  /** Network id; -1 = any (trace only). */
  net: number;
  /** capture: -1 = on the wire; else the index of the stage the frame is copied after. */
  stage: number;
  /** Filter source (dataplane/filter.ts); '' = every frame. */
  filter: string;
  /** trace: at most this many frames from this worker (0 = no limit). */
  count: number;
}

/** Names for trace lines: port labels ("vswab12 (web)") and network names by id. */
export interface TapNames {
  ports: [number, string][];
  nets: [number, string][];
}

interface Wire { bit: number; filter: CompiledFilter }
interface StageTap { bit: number; stage: string; filter: CompiledFilter }
interface Trace { bit: number; port: number; net: number; filter: CompiledFilter; left: number }

export const MAX_TAP_SESSIONS = 32;

export class Taps implements Tracer {
  /** Wire capture sessions per port id, and those on every port. */
  private wire: (Wire[] | undefined)[] = [];
  private wireAll: Wire[] = [];
  private stageTaps: (StageTap[] | undefined)[] = [];
  private traces: Trace[] = [];
  private names: TraceNames = { port: (id) => `#${id}`, network: (id) => `#${id}` };
  private readonly ring: CaptureRing | undefined;
  private readonly worker: number;
  // The frame being run.
  private frameStage: StageTap[] | undefined;
  private traceMask = 0;
  private text: TextTracer | null = null;
  private frameText = '';
  private portText = '';

  constructor(ring: CaptureRing | undefined, worker: number) {
    this.ring = ring;
    this.worker = worker;
  }

  /** Is anything tapped inside the pipeline (stage captures or traces)? */
  get inPipeline(): boolean {
    return this.traces.length > 0 || this.stageTaps.some((l) => l !== undefined);
  }

  /** Replace every session. Throws (naming the session) on a filter that does not compile. */
  load(specs: TapSpec[], names: TapNames, portName: (id: number) => string | undefined): void {
    const wire: (Wire[] | undefined)[] = [];
    const wireAll: Wire[] = [];
    const stageTaps: (StageTap[] | undefined)[] = [];
    const traces: Trace[] = [];
    for (const s of specs) {
      if (!(s.sid >= 0 && s.sid < MAX_TAP_SESSIONS)) throw new Error(`tap session id ${s.sid} out of range`);
      const bit = 2 ** s.sid;
      const filter = compileFilter(s.filter);
      if (s.kind === 'trace') {
        traces.push({ bit, port: s.port, net: s.net, filter, left: s.count > 0 ? s.count : Infinity });
      } else if (s.stage < 0) {
        if (s.port < 0) wireAll.push({ bit, filter });
        else (wire[s.port] ??= []).push({ bit, filter });
      } else {
        const stage = STAGE_NAMES[s.stage];
        if (stage === undefined) throw new Error(`no stage #${s.stage}`);
        (stageTaps[s.port] ??= []).push({ bit, stage, filter });
      }
    }
    const portLabels = new Map(names.ports);
    const netNames = new Map(names.nets);
    this.wire = wire;
    this.wireAll = wireAll;
    this.stageTaps = stageTaps;
    this.traces = traces;
    this.names = {
      port: (id) => portLabels.get(id) ?? portName(id) ?? `#${id}`,
      network: (id) => netNames.get(id) ?? (id === 4095 ? 'uplink' : `#${id}`),
    };
  }

  /** Is any session capturing this port's frames on the wire? */
  onWire(port: number): boolean {
    return this.wire[port] !== undefined || this.wireAll.length > 0;
  }

  /** Sessions that want this wire frame (bits), or 0. */
  wireMask(port: number, buf: Uint8Array, off: number, len: number): number {
    let mask = 0;
    const list = this.wire[port];
    if (list !== undefined) for (let i = 0; i < list.length; i++) if (list[i].filter.match(buf, off, len)) mask |= list[i].bit;
    const all = this.wireAll;
    for (let i = 0; i < all.length; i++) if (all[i].filter.match(buf, off, len)) mask |= all[i].bit;
    return mask;
  }

  /** Before the pipeline runs frame p (received on p.inPort). */
  begin(p: Packet): void {
    this.frameStage = this.stageTaps[p.inPort];
    // The network is known only after ingress (a trunk carries several): checked in end().
    let mask = 0;
    const traces = this.traces;
    for (let i = 0; i < traces.length; i++) {
      const t = traces[i];
      if (t.left <= 0 || (t.port >= 0 && t.port !== p.inPort)) continue;
      if (!t.filter.match(p.buf, p.ethOff, p.ethLen)) continue;
      mask |= t.bit;
    }
    this.traceMask = mask;
    if (mask !== 0) {
      this.text = new TextTracer(this.names);
      this.frameText = formatFrame(p.buf, p.ethOff, p.ethLen);
      this.portText = this.names.port(p.inPort);
    } else {
      this.text = null;
    }
  }

  /** Whether the frame since begin() is being traced (its record will be written by end()). */
  get tracing(): boolean {
    return this.text !== null;
  }

  step(stage: string, p: Packet, ctx: StageContext): void {
    if (this.text !== null) this.text.step(stage, p, ctx);
    const taps = this.frameStage;
    if (taps === undefined || this.ring === undefined) return;
    let mask = 0;
    for (let i = 0; i < taps.length; i++) {
      const t = taps[i];
      if (t.stage === stage && t.filter.match(p.buf, p.ethOff, p.ethLen)) mask |= t.bit;
    }
    if (mask !== 0) this.ring.push(p.buf, p.ethOff, p.ethLen, p.inPort, DIR_RX, performance.timeOrigin + performance.now(), mask);
  }

  /** After the pipeline (and egress): a traced frame's record goes to the ring, with what impairment did to it. */
  end(p: Packet, ctx: StageContext, impair: readonly ImpairNote[] = []): void {
    if (this.text === null || this.ring === undefined) return;
    let mask = 0;
    for (const t of this.traces) {
      if ((this.traceMask & t.bit) === 0 || (t.net >= 0 && t.net !== p.netId)) continue;
      mask |= t.bit;
      t.left--;
    }
    this.traceMask = mask;
    if (mask === 0) { this.text = null; return; }
    const now = performance.timeOrigin + performance.now();
    const r: TraceResult = {
      time: new Date(now).toISOString(), port: this.portText, worker: this.worker, frame: this.frameText,
      steps: [...this.text.steps, ...vxlanSteps(p, ctx), ...impairSteps(impair, this.names)], verdict: verdictOf(p, ctx, this.names),
    };
    const bytes = Buffer.from(JSON.stringify(r));
    this.ring.push(bytes, 0, bytes.length, p.inPort, DIR_TRACE, now, this.traceMask);
    this.text = null;
  }
}
