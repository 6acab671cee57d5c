// Hostile frames through the whole pipeline with the router's tables (L3, neighbours,
// conntrack, DNS in the worker): mutated and truncated versions of every kind of frame the
// router handles. No stage may throw (the pipeline would count `stage-error`), and nothing
// may claim bytes outside the receive buffer. Deterministic (seeded).
import { describe, expect, it } from 'vitest';
import { Pipeline } from '../../../dataplane/pipeline';
import { Packet, OUT_DROP } from '../../../dataplane/packet';
import { DROP, DROP_REASONS } from '../../../dataplane/drops';
import { Fdb } from '../../../dataplane/tables/fdb';
import { PortTable } from '../../../dataplane/tables/ports';
import { L3Table, type L3Snapshot } from '../../../dataplane/tables/l3';
import { Neigh, NEIGH_DEFAULTS, UPLINK_NET } from '../../../dataplane/tables/neigh';
import { Conntrack } from '../../../dataplane/tables/conntrack';
import { WorkerDns } from '../../../dataplane/l3/dns';
import type { Emitter, StageContext } from '../../../dataplane/stages/stage';
import { macHi, macLo, parseIp, parseMac } from '../../../dataplane/wire';
import { arpReply, arpRequest, icmpEcho, rng, tagged, tcpFrame, tcpSyn, udpFrame, withVnet } from '../../fixtures/frames';
import { makeQuery } from '../dns/helpers';

const GW = '10.89.0.1';
const GW_MAC = '02:42:0a:59:00:01';
const C1 = '10.89.0.2';
const C1_MAC = '02:42:0a:59:00:02';
const UP = '198.51.100.2';
const UP_MAC = '02:00:00:00:00:99';
const OUT = '198.51.100.1';
const OUT_MAC = '02:00:00:00:00:01';
const [P_HOST, P_C1, P_C2, P_UP] = [0, 1, 2, 9];

const ip = (t: string): number => parseIp(t) >>> 0;
const hi = (m: string): number => macHi(parseMac(m), 0);
const lo = (m: string): number => macLo(parseMac(m), 0);

function setup(): { ctx: StageContext; pipe: Pipeline } {
  const fdb = new Fdb({ maxEntries: 256, maxPerPort: 64, maxPorts: 16, agingSeconds: 300 });
  const ports = new PortTable(16);
  ports.add(P_HOST, 'vsw0', 0);
  ports.add(P_C1, 'vswc1', 0);
  ports.add(P_C2, 'vswc2', 0);
  ports.add(P_UP, 'up0', UPLINK_NET);
  const snap: L3Snapshot = {
    nets: [{
      id: 0, gwIp: ip(GW), gwMacHi: hi(GW_MAC), gwMacLo: lo(GW_MAC), subnet: ip('10.89.0.0'), mask: 0xffffff00,
      internal: false, icc: true, hostPort: P_HOST, hostIp: ip('10.89.0.254'), hostMacHi: hi('02:42:0a:59:00:fe'), hostMacLo: lo('02:42:0a:59:00:fe'),
    }],
    uplink: { port: P_UP, ip: ip(UP), subnet: ip('198.51.100.0'), mask: 0xffffff00, macHi: hi(UP_MAC), macLo: lo(UP_MAC), gateway: ip(OUT) },
    mappings: [{ id: 1, proto: 6, hostIp: 0, hostPort: 8080, net: 0, ip: ip(C1), port: 80 }],
  };
  const neigh = new Neigh({ ...NEIGH_DEFAULTS, maxEntries: 64 });
  neigh.learn(UPLINK_NET, ip(OUT), hi(OUT_MAC), lo(OUT_MAC), 1000);
  neigh.learn(0, ip(C1), hi(C1_MAC), lo(C1_MAC), 1000);
  const ct = new Conntrack({ maxEntries: 128, maxPerSource: 64, portMin: 1024, portMax: 65535 });
  const dns = new WorkerDns();
  dns.load({ nets: [{ id: 0, name: 'bridge', order: 'rotate' }], endpoints: [{ network: 'bridge', container: 'c1', ip: C1, aliases: ['web'] }] });
  const gen = new Uint8Array(64 * 2048);
  let n = 0;
  const emit: Emitter = {
    buf: gen,
    alloc: () => (n < 64 ? (n++) * 2048 + 16 : -1),
    send: (off, len) => { expect(off + len).toBeLessThanOrEqual(gen.length); },
    punt: () => true,
  };
  const ctx: StageContext = { fdb, ports, now: 1000, dryRun: false, l3: { table: new L3Table(snap), neigh, ct, emit, dns } };
  return { ctx, pipe: new Pipeline() };
}

/** Every kind of frame the router handles, from a container or from the uplink. */
function seeds(): { frame: Uint8Array; port: number }[] {
  const toGw = { srcMac: C1_MAC, dstMac: GW_MAC, srcIp: C1 };
  const fromOut = { srcMac: OUT_MAC, dstMac: UP_MAC, srcIp: OUT, dstIp: UP };
  const out = tcpSyn({ ...toGw, dstIp: OUT, srcPort: 40000, dstPort: 80 });
  const quoted = out.subarray(14, 14 + 28);
  const unreach = new Uint8Array(8 + quoted.length);
  unreach[0] = 3; unreach[1] = 3;
  unreach.set(quoted, 8);
  const list = [
    { frame: arpRequest({ srcMac: C1_MAC, srcIp: C1, targetIp: GW }), port: P_C1 },
    { frame: arpReply({ srcMac: C1_MAC, srcIp: C1, dstMac: GW_MAC, dstIp: GW }), port: P_C1 },
    { frame: arpRequest({ srcMac: OUT_MAC, srcIp: OUT, targetIp: UP }), port: P_UP },
    { frame: icmpEcho({ ...toGw, dstIp: GW, id: 1, seq: 1 }), port: P_C1 },
    { frame: icmpEcho({ ...toGw, dstIp: OUT, id: 2, seq: 1 }), port: P_C1 },
    { frame: udpFrame({ ...toGw, dstIp: GW, srcPort: 5000, dstPort: 53, payload: makeQuery('web') }), port: P_C1 },
    { frame: udpFrame({ ...toGw, dstIp: GW, srcPort: 5001, dstPort: 53, payload: makeQuery('example.org', 28) }), port: P_C1 },
    { frame: tcpSyn({ ...toGw, dstIp: GW, srcPort: 5002, dstPort: 53 }), port: P_C1 },
    { frame: out, port: P_C1 },
    { frame: udpFrame({ ...toGw, dstIp: OUT, srcPort: 5003, dstPort: 9999 }), port: P_C1 },
    { frame: tcpFrame({ ...fromOut, srcPort: 80, dstPort: 40000, flags: 0x12 }), port: P_UP },
    { frame: tcpSyn({ ...fromOut, srcPort: 33000, dstPort: 8080 }), port: P_UP },
    { frame: icmpEcho({ ...fromOut, id: 3, seq: 1 }), port: P_UP },
    { frame: udpFrame({ ...toGw, dstIp: '10.89.0.3', srcPort: 1, dstPort: 2 }), port: P_C1 },
    { frame: tagged(icmpEcho({ ...toGw, dstIp: GW, id: 4, seq: 1 }), 10), port: P_C1 },
  ];
  // An ICMP port unreachable from outside about the masqueraded flow.
  const icmpErr = icmpEcho({ ...fromOut, id: 0, seq: 0 });
  const e = new Uint8Array(14 + 20 + unreach.length);
  e.set(icmpErr.subarray(0, 34));
  e[23] = 1;
  e[16] = 0; e[17] = 20 + unreach.length;
  e.set(unreach, 34);
  list.push({ frame: e, port: P_UP });
  return list;
}

function mutate(f: Uint8Array, r: () => number): Uint8Array {
  let out = f.slice();
  const kind = Math.floor(r() * 4);
  if (kind === 0) out = out.subarray(0, Math.floor(r() * out.length));                 // truncated
  else if (kind === 1) for (let i = 0; i < 1 + r() * 6; i++) out[Math.floor(r() * out.length)] = Math.floor(r() * 256);
  else if (kind === 2) for (let i = 14; i < out.length; i++) { if (r() < 0.1) out[i] ^= 1 << Math.floor(r() * 8); }
  else { const g = new Uint8Array(out.length + Math.floor(r() * 64)); g.set(out); for (let i = out.length; i < g.length; i++) g[i] = Math.floor(r() * 256); out = g; }
  return out;
}

describe('pipeline with the router, hostile frames (fuzz)', () => {
  it('never throws (no stage-error) and never claims bytes outside the buffer: 40,000 frames', () => {
    const r = rng(0xbadf00d);
    const s = setup();
    const list = seeds();
    const p = new Packet();
    const drops: Record<string, number> = {};
    for (let n = 0; n < 40_000; n++) {
      const seed = list[n % list.length];
      const f = n < list.length ? seed.frame : mutate(seed.frame, r);
      const vnet = r() < 0.3;
      const frame = vnet ? withVnet(f, r() < 0.5 ? { flags: 1, csumStart: 34, csumOffset: 16 } : {}) : f;
      // Room after the frame, as in a receive slot (answers may grow the frame in place).
      const buf = new Uint8Array(8 + frame.length + 2048);
      buf.set(frame, 8);
      p.reset(buf, 8, frame.length, vnet, seed.port, 0);
      s.ctx.dryRun = r() < 0.1;
      s.pipe.run(p, s.ctx);
      if (p.out === OUT_DROP) drops[DROP_REASONS[p.drop]] = (drops[DROP_REASONS[p.drop]] ?? 0) + 1;
      expect(p.ethOff + p.ethLen).toBeLessThanOrEqual(buf.length);
      expect(p.off + p.len).toBeLessThanOrEqual(buf.length);
    }
    expect(drops['stage-error'] ?? 0, JSON.stringify(drops)).toBe(0);
    // Every frame ended at exactly one stage.
    expect(s.pipe.ended.reduce((a, b) => a + b, 0)).toBe(40_000);
  });

  it('a stage that throws drops the frame as stage-error; the pipeline goes on', () => {
    const pipe = new Pipeline([{ name: 'boom', process: () => { throw new Error('bug'); } }]);
    const p = new Packet();
    p.reset(new Uint8Array(60), 0, 60, false, 1, 0);
    pipe.run(p, setup().ctx);
    expect(p.out).toBe(OUT_DROP);
    expect(p.drop).toBe(DROP['stage-error']);
    expect(pipe.ended[0]).toBe(1);
  });
});
