// MAC table events between threads: a worker's Fdb hook writes each change as a 16-byte
// record into its events ring (workers/capture-ring.ts format: `port` = the port, `dir` =
// the FDB_EV_* kind); the main thread decodes them. Learning is rare next to forwarding, so
// this costs nothing per frame.

import type { FdbHook } from '../dataplane/tables/fdb';
import type { Conntrack, ConntrackHook } from '../dataplane/tables/conntrack';
import { macToStringHiLo } from '../dataplane/wire/mac';
import type { CaptureRing, CapturedFrame } from './capture-ring';

export interface FdbEvent {
  timeMs: number;
  kind: number;
  net: number;
  vlan: number;
  mac: string;
  port: number;
  oldPort: number;
}

const REC = 16;

/** A hook that records changes into `ring`. */
export function fdbEventWriter(ring: CaptureRing): FdbHook {
  const rec = new Uint8Array(REC);
  const v = new DataView(rec.buffer);
  return (kind, net, vlan, hi, lo, port, oldPort) => {
    v.setUint32(0, net, true);
    v.setUint16(4, vlan, true);
    v.setUint16(6, hi, true);
    v.setUint32(8, lo, true);
    v.setInt32(12, oldPort, true);
    ring.push(rec, 0, REC, port, kind, Date.now());
  };
}

/** Connection events share the ring: their `dir` is CT_EVENT_BASE + CT_EV_*. */
export const CT_EVENT_BASE = 100;
const CT_REC = 28;

export interface CtEvent {
  timeMs: number;
  kind: number;      // CT_EV_* (dataplane/tables/conntrack.ts)
  proto: number;
  ctKind: number;    // CT_KIND_*
  net: number;
  orig: { src: number; dst: number; sport: number; dport: number };
  reply: { src: number; dst: number; sport: number; dport: number };
}

/**
 * A conntrack hook that records new (and, on the main thread, expired/removed) connections
 * into `ring`. It runs under the table's lock and reads the connection with entry(), which
 * the table allows from its hook. Connections are created once per flow, not per packet.
 */
export function ctEventWriter(ring: CaptureRing, ct: Conntrack): ConntrackHook {
  const rec = new Uint8Array(CT_REC);
  const v = new DataView(rec.buffer);
  return (event, h) => {
    const e = ct.entry(h);
    if (e === null) return;
    v.setUint8(0, e.proto);
    v.setUint8(1, e.kind);
    v.setUint16(2, e.net, true);
    v.setUint32(4, e.orig.src, true);
    v.setUint32(8, e.orig.dst, true);
    v.setUint16(12, e.orig.sport, true);
    v.setUint16(14, e.orig.dport, true);
    v.setUint32(16, e.reply.src, true);
    v.setUint32(20, e.reply.dst, true);
    v.setUint16(24, e.reply.sport, true);
    v.setUint16(26, e.reply.dport, true);
    ring.push(rec, 0, CT_REC, 0, CT_EVENT_BASE + event, Date.now());
  };
}

export function decodeCtEvent(f: CapturedFrame): CtEvent {
  const v = new DataView(f.data.buffer, f.data.byteOffset, f.data.byteLength);
  return {
    timeMs: f.timeMs, kind: f.dir - CT_EVENT_BASE, proto: v.getUint8(0), ctKind: v.getUint8(1), net: v.getUint16(2, true),
    orig: { src: v.getUint32(4, true), dst: v.getUint32(8, true), sport: v.getUint16(12, true), dport: v.getUint16(14, true) },
    reply: { src: v.getUint32(16, true), dst: v.getUint32(20, true), sport: v.getUint16(24, true), dport: v.getUint16(26, true) },
  };
}

export function decodeFdbEvent(f: CapturedFrame): FdbEvent {
  const v = new DataView(f.data.buffer, f.data.byteOffset, f.data.byteLength);
  const hi = v.getUint16(6, true);
  const lo = v.getUint32(8, true);
  return {
    timeMs: f.timeMs, kind: f.dir, net: v.getUint32(0, true), vlan: v.getUint16(4, true),
    mac: macToStringHiLo(hi, lo), port: f.port, oldPort: v.getInt32(12, true),
  };
}
