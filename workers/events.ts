// MAC table events between threads: a worker's Fdb hook writes each change as a 16-byte
// record into its events ring (workers/capture-ring.ts format: `port` = the port, `dir` =
// the FDB_EV_* kind); the main thread decodes them. Learning is rare next to forwarding, so
// this costs nothing per frame.

import type { FdbHook } from '../dataplane/tables/fdb';
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

export function decodeFdbEvent(f: CapturedFrame): FdbEvent {
  const v = new DataView(f.data.buffer, f.data.byteOffset, f.data.byteLength);
  const hi = v.getUint16(6, true);
  const lo = v.getUint32(8, true);
  return {
    timeMs: f.timeMs, kind: f.dir, net: v.getUint32(0, true), vlan: v.getUint16(4, true),
    mac: macToStringHiLo(hi, lo), port: f.port, oldPort: v.getInt32(12, true),
  };
}
