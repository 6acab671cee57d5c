// `vsw replay`: captures run through the switch of a snapshot (control/snapshot.ts),
// offline, in this one process -- no daemon, no root, no namespaces, no native addon. The
// switch is the real one: a WorkerLoop (workers/loop.ts) over the snapshot's ports and
// tables, each input frame handed to loop.inject() as if its port had received it (the path
// every received frame takes: counters, pipeline, egress), with an Io whose send() writes
// the port's pcap instead of a socket.
//
// Time is virtual: the inputs are merged by timestamp (ties: the lower port id first, then
// the order of the --in options), and the clock reads the current frame's timestamp. The
// stages see its whole seconds (as a worker does); before a frame of a new second the
// tables are aged exactly as the daemon's timer does (MAC aging, neighbour states,
// connection timeouts); the ICMP error rate limit runs on the virtual milliseconds. What
// the pipeline draws at random (NAT port search after collisions, DNS 'random' order) draws
// from a seeded generator for the run. Same snapshot and inputs, same bytes out.
//
// Outputs (DIR): PORT.pcap per port (what the switch sent on it, stamped with the virtual
// time of the frame that caused it), drops.json (per port: received, sent, drops by reason;
// frames the captures could not carry; punts), punted.pcap (frames the workers hand to the
// daemon's main thread: DNS queries for names the switch does not know, which the daemon
// forwards upstream -- replay has no upstream, so they are recorded, not answered), and
// with --trace, trace.txt (every input frame's path, worded as `vsw trace` words it).
// Frames the daemon's main thread makes itself (its DNS answers, ARP keep-alives of the
// uplink gateway and of quiet endpoints) are not made: replay runs the workers' part.
// Link impairment: each impaired port gets its settings from the snapshot (its Impairments
// start afresh from their seeds, dataplane/impair/); their queues are driven by the same
// virtual clock: before each input frame, and after the last, everything due leaves at its
// own time (WorkerLoop.releaseDue at each nextImpairDeadline), stamped with that time.

import * as fs from 'fs';
import * as path from 'path';
import { Fdb } from '../dataplane/tables/fdb';
import { Neigh } from '../dataplane/tables/neigh';
import { Conntrack } from '../dataplane/tables/conntrack';
import { icmpErrors } from '../dataplane/router/icmp-limit';
import { DROP_REASONS } from '../dataplane/drops';
import { seededRandom } from '../dataplane/rng';
import { formatTrace, type TraceResult } from '../dataplane/trace';
import { VNET_HDR_LEN } from '../dataplane/wire/vnet';
import { UPLINK_NET } from '../dataplane/tables/neigh';
import { WorkerLoop, maxInjectLen } from '../workers/loop';
import { CaptureRing, captureRingBytes, DIR_TRACE } from '../workers/capture-ring';
import { CTRL_PUNT, CTRL_WORDS, MAX_PORTS, statsBytes } from '../workers/shared';
import { KIND_PACKET, KIND_TAP, type Io } from '../workers/io';
import { portCounters } from '../workers/host-counters';
import type { AckMsg, InjectTally, ToWorker } from '../workers/protocol';
import { InvalidArgumentError } from './errors';
import { noneUncarriable, PcapReader, scanPcap, uncarriable, uncarriableText, type PcapRecord, type Uncarriable } from './pcap-read';
import { PcapWriter } from './pcap';
import { parseSnapshot, snapshotTables, type Snapshot, type SnapshotPort } from './snapshot';
import { portLabel, resolvePort } from './trace';

export interface ReplayOptions {
  snapshot: string;
  inputs: { port: string; file: string }[];
  out: string;
  trace: boolean;
}

/** What a run did; also written (without the wall-clock time) to DIR/drops.json. */
export interface ReplaySummary {
  version: 1;
  /** Input records read, and those sent into the switch. */
  frames: number;
  injected: number;
  notSent: Record<Uncarriable, number>;
  /** Virtual time of the first and last input frame, seconds since the epoch. */
  firstTime: number;
  lastTime: number;
  ports: { port: string; label: string; rxPackets: number; txPackets: number; drops: Record<string, number> }[];
  /** Verdicts of the pipeline on the input frames (as vsw inject counts them). */
  forwarded: number;
  local: number;
  dropped: Record<string, number>;
  punted: number;
  /** Snapshot ports replay cannot run (VXLAN). */
  skippedPorts: string[];
}

const FD_BASE = 1000;
const SEED = 0x9e3779b9;

/** The virtual clock: the current frame's time. */
class VirtualClock {
  sec = 0;
  nsec = 0;
  get usec(): number { return Math.floor(this.nsec / 1000); }
  get ms(): number { return this.sec * 1000 + this.nsec / 1e6; }
}

/** The Io of an offline loop: sending writes the port's pcap; there is nothing to receive. */
class ReplayIo implements Io {
  constructor(private readonly writers: (PcapWriter | undefined)[], private readonly vnet: boolean[], private readonly clock: VirtualClock) {}
  send(fd: number, _kind: number, buf: Uint8Array, offs: Int32Array, lens: Int32Array, count: number): number {
    const id = fd - FD_BASE;
    const w = this.writers[id];
    if (w === undefined) return count;
    const hdr = this.vnet[id] ? VNET_HDR_LEN : 0;
    const { sec, usec } = this.clock;
    for (let j = 0; j < count; j++) w.write(buf, offs[j] + hdr, lens[j] - hdr, sec, usec);
    return count;
  }
  openPacket(): never { throw new Error('replay: no devices'); }
  openTap(): never { throw new Error('replay: no devices'); }
  close(): void { /* nothing */ }
  recv(): number { return 0; }
  packetStats(): { packets: number; drops: number } { return { packets: 0, drops: 0 }; }
  poll(): number { return 0; }
  eventfd(): number { return -1; }
  eventfdSignal(): void { /* nothing */ }
  eventfdDrain(): void { /* nothing */ }
  ifindex(): number { return 0; }
  setMac(): void { /* nothing */ }
  openUdp(): never { throw new Error('replay: no devices'); }
  recvUdp(): number { return 0; }
  sendUdp(_fd: number, _b: Uint8Array, _o: Int32Array, _l: Int32Array, _a: Int32Array, count: number): number { return count; }
}

/** An input: its reader, its port, and the record at its head (null: done). */
interface Input {
  port: number;
  order: number;
  reader: PcapReader & { close(): void };
  head: PcapRecord | null;
}

/** The port a --in names, in the snapshot (as every command names ports). */
function resolveIn(s: Snapshot, spec: string): SnapshotPort {
  const id = resolvePort(spec, {
    byName: (name) => s.ports.find((p) => p.name === name)?.id,
    endpoint: (container, network) => s.ports.find((p) => p.container === container && p.network === network)?.id,
  }, (c) => s.containers.find((x) => x.name === c)?.networks[0]);
  return s.ports.find((p) => p.id === id)!;
}

/** Run a replay (see the header). Checks everything (snapshot, ports, every input whole) before writing anything. */
export function runReplay(o: ReplayOptions): ReplaySummary {
  let text: string;
  try {
    text = fs.readFileSync(o.snapshot, 'utf8');
  } catch (e) {
    throw new InvalidArgumentError(`cannot read ${o.snapshot}: ${(e as Error).message}`);
  }
  const snap = parseSnapshot(text, o.snapshot);
  if (o.inputs.length === 0) throw new InvalidArgumentError('replay needs at least one --in PORT=FILE.pcap');
  const runnable = snap.ports.filter((p) => p.kind === 'afpacket' || p.kind === 'tap');
  const ins = o.inputs.map((x) => {
    const p = resolveIn(snap, x.port);
    if (!runnable.includes(p)) throw new InvalidArgumentError(`--in ${x.port}: a ${p.kind} port; replay runs container, host, trunk and uplink ports`);
    return { port: p, file: x.file };
  });
  for (const x of ins) scanPcap(x.file);
  // The run's random draws are seeded from here on, before the switch is built: the DNS
  // registries take their random source when they are made.
  const saved = { random: Math.random, icmp: icmpErrors.clock };
  const clock = new VirtualClock();
  Math.random = seededRandom(SEED);
  icmpErrors.clock = () => clock.ms;
  const restore = (): void => {
    Math.random = saved.random;
    icmpErrors.clock = saved.icmp;
    icmpErrors.refill();
  };
  let run: ReturnType<typeof buildSwitch>;
  try {
    run = buildSwitch(snap, runnable, clock, o.trace);
  } catch (e) {
    restore();
    throw e;
  }
  const { loop, writers, fdb, neigh, ct, stats, punt, taps, ctrl } = run;
  const impaired = snap.impairment.length > 0;
  // Everything is checked: now the outputs.
  fs.mkdirSync(o.out, { recursive: true });
  for (const p of runnable) writers[p.id] = new PcapWriter(path.join(o.out, `${p.name}.pcap`));
  let punts = 0;
  const outs = { punted: path.join(o.out, 'punted.pcap'), trace: path.join(o.out, 'trace.txt') };
  const punted = new PcapWriter(outs.punted);
  const traceFd = taps ? fs.openSync(outs.trace, 'w') : -1;
  const summary: ReplaySummary = {
    version: 1, frames: 0, injected: 0, notSent: noneUncarriable(), firstTime: 0, lastTime: 0,
    ports: [], forwarded: 0, local: 0, dropped: {}, punted: 0, skippedPorts: snap.ports.filter((p) => !runnable.includes(p)).map((p) => p.name),
  };
  const tally: InjectTally = { forwarded: 0, local: 0, impaired: 0, drops: [] };
  const lens = [0];
  const inputs: Input[] = ins.map((x, order) => {
    const reader = PcapReader.open(x.file);
    return { port: x.port.id, order, reader, head: reader.next() };
  });
  try {
    let aged = -1;
    let first = true;
    /** The clock reaches (sec, nsec): tables aged at each new second, as the daemon's timer does. */
    const reach = (sec: number, nsec: number): void => {
      if (sec > clock.sec || (sec === clock.sec && nsec > clock.nsec)) { clock.sec = sec; clock.nsec = nsec; }
      if (clock.sec !== aged) {
        aged = clock.sec;
        fdb.age(aged);
        neigh.age(aged);
        ct.expire(aged);
      }
    };
    /** What the punt ring and the trace ring got, written out at the current time. */
    const drain = (): void => {
      // The loop counts its punts in the control words (CTRL_PUNT): look at the ring only then.
      const p = Atomics.load(ctrl, CTRL_PUNT);
      if (p !== punts) { punts = p; drainPunts(punt, punted, clock); }
      if (taps) drainTraces(taps, traceFd, clock);
    };
    /** Impaired ports: everything due up to `ms` leaves at its own time (out by egress, in through the pipeline). */
    const releaseUntil = (ms: number): void => {
      let last = -1;
      let same = 0;
      for (let d = loop.nextImpairDeadline(); d <= ms && d !== Infinity; d = loop.nextImpairDeadline()) {
        same = d === last ? same + 1 : 0;
        last = d;
        if (same > 1_000_000) throw new Error(`replay: an impairment queue does not release what is due at ${d} ms`);
        const sec = Math.floor(d / 1000);
        reach(sec, Math.min(999_999_999, Math.round((d - sec * 1000) * 1e6)));
        loop.releaseDue(Math.max(d, clock.ms));
        drain();
      }
    };
    for (;;) {
      // The earliest head; ties: lower port id, then earlier --in.
      let best: Input | undefined;
      for (const i of inputs) {
        const h = i.head;
        if (h === null) continue;
        if (best === undefined) { best = i; continue; }
        const b = best.head!;
        if (h.sec < b.sec || (h.sec === b.sec && (h.nsec < b.nsec || (h.nsec === b.nsec && (i.port < best.port || (i.port === best.port && i.order < best.order)))))) best = i;
      }
      if (best === undefined) break;
      const r = best.head!;
      if (first) { clock.sec = r.sec; clock.nsec = r.nsec; summary.firstTime = r.sec + r.nsec / 1e9; icmpErrors.refill(); first = false; }
      if (impaired) releaseUntil(r.sec * 1000 + r.nsec / 1e6);
      // A capture's records are in time order; one that goes back is taken at the time reached.
      reach(r.sec, r.nsec);
      summary.frames++;
      const why = uncarriable(r, maxInjectLen);
      if (why !== undefined) {
        summary.notSent[why]++;
      } else {
        lens[0] = r.len;
        loop.inject(best.port, r.buf, lens, tally, r.at, clock.ms);
        summary.injected++;
        drain();
      }
      best.head = best.reader.next();
    }
    // What impairment still holds leaves at its time, after the last input.
    if (impaired) releaseUntil(Infinity);
    summary.lastTime = clock.sec + clock.nsec / 1e9;
  } finally {
    restore();
    for (const i of inputs) i.reader.close();
    for (const w of writers) w?.close();
    summary.punted = punted.frames;
    punted.close();
    if (traceFd >= 0) fs.closeSync(traceFd);
  }
  summary.forwarded = tally.forwarded;
  summary.local = tally.local;
  tally.drops.forEach((n, i) => { if (n) summary.dropped[DROP_REASONS[i]] = n; });
  summary.ports = runnable.map((p) => {
    const c = portCounters([{ stats }], p.id);
    return { port: p.name, label: portLabel(p), rxPackets: c.rxPackets, txPackets: c.txPackets, drops: c.drops };
  });
  fs.writeFileSync(path.join(o.out, 'drops.json'), `${JSON.stringify(summary, null, 2)}\n`);
  return summary;
}

/** The snapshot's switch: a WorkerLoop told its ports, router and (with trace) a trace session; writers filled in later. */
function buildSwitch(snap: Snapshot, runnable: SnapshotPort[], clock: VirtualClock, trace: boolean) {
  const tables = snapshotTables(snap);
  const writers: (PcapWriter | undefined)[] = [];
  const vnet: boolean[] = [];
  for (const p of runnable) vnet[p.id] = p.vnet;
  const fdb = new Fdb(snap.tables.fdb.config, tables.fdb);
  const neigh = new Neigh(snap.tables.neigh.config, tables.neigh);
  const ct = new Conntrack(snap.tables.conntrack.config, tables.ct);
  const stats = new Float64Array(new SharedArrayBuffer(statsBytes(MAX_PORTS)));
  const punt = new CaptureRing(new SharedArrayBuffer(captureRingBytes(1 << 20)));
  const taps = trace ? new CaptureRing(new SharedArrayBuffer(captureRingBytes(4 << 20))) : undefined;
  const inbox: ToWorker[] = [];
  const ctrl = new Int32Array(new SharedArrayBuffer(CTRL_WORDS * 4));
  const refused: string[] = [];
  const loop = new WorkerLoop({
    io: new ReplayIo(writers, vnet, clock), fdb, ctrl, stats,
    eventfd: -1, maxPorts: MAX_PORTS, worker: 0, clock: () => clock.sec,
    receive: () => inbox.shift(), reply: (m: AckMsg) => { if (m.error) refused.push(m.error); },
    capture: taps, l3: { neigh, ct }, punt,
  });
  for (const p of runnable) {
    inbox.push({
      type: 'addPort', seq: 0, id: p.id, name: p.name, fd: FD_BASE + p.id, kind: p.kind === 'tap' ? KIND_TAP : KIND_PACKET,
      vnet: p.vnet, netId: p.netId, vlans: p.vlans, rx: true, ...(p.guard ? { guard: p.guard } : {}),
    });
  }
  if (snap.l3) inbox.push({ type: 'l3', seq: 0, snapshot: snap.l3 });
  for (const m of snap.impairment) {
    if (runnable.some((p) => p.id === m.id)) inbox.push({ type: 'impair', seq: 0, id: m.id, ...(m.in ? { in: m.in } : {}), ...(m.out ? { out: m.out } : {}) });
  }
  const netName = new Map(snap.networks.map((n) => [n.id, n.name]));
  netName.set(UPLINK_NET, 'uplink');
  if (taps) {
    inbox.push({
      type: 'taps', seq: 0, sessions: [{ sid: 0, kind: 'trace', port: -1, net: -1, stage: -1, filter: '', count: 0 }],
      names: { ports: snap.ports.map((p): [number, string] => [p.id, portLabel(p)]), nets: [...netName] },
    });
  }
  loop.control();
  if (refused.length > 0) throw new InvalidArgumentError(`snapshot: the switch refused it: ${refused[0]}`);
  return { loop, writers, fdb, neigh, ct, stats, punt, taps, ctrl };
}

function drainPunts(ring: CaptureRing, out: PcapWriter, clock: VirtualClock): void {
  for (const f of ring.drain()) out.write(f.data, 0, f.data.length, clock.sec, clock.usec);
}

function drainTraces(ring: CaptureRing, fd: number, clock: VirtualClock): void {
  const time = new Date(Math.floor(clock.ms)).toISOString();
  let text = '';
  for (const f of ring.drain()) {
    if (f.dir !== DIR_TRACE) continue;
    const r = JSON.parse(Buffer.from(f.data).toString()) as TraceResult;
    text += `${time} port ${r.port ?? '?'}\n${formatTrace(r)}\n`;
  }
  if (text) fs.writeSync(fd, text);
}

/** The summary as `vsw replay` prints it. */
export function replaySummaryText(s: ReplaySummary): string {
  const drops = Object.entries(s.dropped);
  const lines = [
    `replayed ${s.injected} of ${s.frames} frames (virtual time ${new Date(s.firstTime * 1000).toISOString()} to ${new Date(s.lastTime * 1000).toISOString()})`,
    `forwarded ${s.forwarded}, taken by the switch ${s.local}, dropped ${drops.reduce((a, [, n]) => a + n, 0)}${drops.length ? `: ${drops.map(([r, n]) => `${r} ${n}`).join(', ')}` : ''}; punted ${s.punted}`,
  ];
  const notSent = uncarriableText(s.notSent);
  if (notSent) lines.push(notSent);
  for (const p of s.ports) if (p.rxPackets || p.txPackets) lines.push(`  ${p.label}: received ${p.rxPackets}, sent ${p.txPackets}`);
  if (s.skippedPorts.length) lines.push(`not replayed (VXLAN): ${s.skippedPorts.join(', ')}`);
  return `${lines.join('\n')}\n`;
}
