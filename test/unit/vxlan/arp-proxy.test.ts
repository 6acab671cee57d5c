// dataplane/vxlan/arp-proxy.ts (--arp-proxy): learning remote stations from decapsulated
// frames, aging, the reply the forward stage sends back to the asking port, and every case
// where it must not answer (flooded as without the proxy).
import { describe, expect, it } from 'vitest';
import { ArpProxy, arpProxySpec } from '../../../dataplane/vxlan/arp-proxy';
import { Fdb } from '../../../dataplane/tables/fdb';
import { PortTable } from '../../../dataplane/tables/ports';
import { Pipeline } from '../../../dataplane/pipeline';
import { OUT_FLOOD } from '../../../dataplane/packet';
import type { StageContext } from '../../../dataplane/stages/stage';
import { vxlanSteps } from '../../../dataplane/trace';
import { EMPTY_L3, type L3Snapshot } from '../../../dataplane/tables/l3';
import { VNET_HDR_LEN } from '../../../dataplane/wire/vnet';
import { arpReply, arpRequest, icmpEcho } from '../../fixtures/frames';
import { runFrame } from '../../fixtures/pipeline';

const NET = 1;
const LOCAL_PORT = 1;
const OTHER_LOCAL = 2;
const OVERLAY = 3;
const A = '02:42:0a:4d:00:02';   // local container 10.77.0.2
const B = '02:42:0a:4d:00:42';   // remote container 10.77.0.66
const A_IP = '10.77.0.2';
const B_IP = '10.77.0.66';
const VTEP_B = 0xc0a84d02 | 0;   // 192.168.77.2
const AGING = 300;
const parts = (m: string): { hi: number; lo: number } => {
  const b = m.split(':').map((x) => parseInt(x, 16));
  return { hi: (b[0] << 8) | b[1], lo: ((b[2] << 24) | (b[3] << 16) | (b[4] << 8) | b[5]) >>> 0 };
};
const ip = (t: string): number => t.split('.').reduce((a, x) => ((a << 8) | Number(x)) >>> 0, 0);
const u16 = (b: Uint8Array, o: number): number => (b[o] << 8) | b[o + 1];
const macAt = (b: Uint8Array, o: number): string => [...b.subarray(o, o + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
const ipAt = (b: Uint8Array, o: number): string => [...b.subarray(o, o + 4)].join('.');

/** The router's snapshot for network 1 (10.77.0.0/24, gateway .1, host port .254) with local containers. */
function snapshot(localIps: string[]): L3Snapshot {
  return {
    ...EMPTY_L3,
    nets: [{
      id: NET, gwIp: ip('10.77.0.1'), gwMacHi: 0x0242, gwMacLo: 0x0a4d0001, subnet: ip('10.77.0.0'), mask: 0xffffff00,
      internal: false, icc: true, hostPort: -1, hostIp: ip('10.77.0.254'), hostMacHi: 0x0242, hostMacLo: 0x0a4d00fe,
    }],
    dns: { nets: [{ id: NET, name: 'ov', order: 'rotate' }], endpoints: localIps.map((x, i) => ({ network: 'ov', container: `c${i}`, ip: x, aliases: [] })) },
  };
}

function setup(now = 1000): { proxy: ArpProxy; fdb: Fdb; ctx: StageContext; pipe: Pipeline } {
  const ports = new PortTable(16);
  for (const id of [LOCAL_PORT, OTHER_LOCAL, OVERLAY]) ports.add(id, `p${id}`, NET, 0);
  const fdb = new Fdb({ maxEntries: 64, maxPerPort: 16, maxPorts: 16, agingSeconds: AGING });
  const proxy = new ArpProxy(arpProxySpec(AGING, 16));
  proxy.net = NET;
  proxy.overlay = OVERLAY;
  proxy.load(snapshot([A_IP]));
  const arpProxy: (ArpProxy | undefined)[] = [];
  arpProxy[NET] = proxy;
  const ctx: StageContext = { fdb, ports, now, dryRun: false, l3: null, arpProxy };
  return { proxy, fdb, ctx, pipe: new Pipeline() };
}

/** B's frame arriving from the overlay: the FDB learns B behind VTEP_B, the proxy its address. */
function fromOverlay(s: ReturnType<typeof setup>, frame: Uint8Array, mac = B): void {
  const m = parts(mac);
  s.fdb.learnVtep(NET, 0, m.hi, m.lo, OVERLAY, VTEP_B, s.ctx.now);
  s.proxy.learnFrame(frame, 0, frame.length, s.ctx.now);
}

const whoHasB = (): Uint8Array => arpRequest({ srcMac: A, srcIp: A_IP, targetIp: B_IP });

describe('ARP proxy (VXLAN --arp-proxy)', () => {
  it('learns a remote station from a decapsulated ARP packet and answers a local request with its MAC, to the asking port', () => {
    const s = setup();
    fromOverlay(s, arpReply({ srcMac: B, srcIp: B_IP, dstMac: A, dstIp: A_IP }));
    expect(s.proxy.entries(s.ctx.now)).toEqual([{ ip: B_IP, mac: B, ageSeconds: 0 }]);
    const p = runFrame(s.pipe, s.ctx, whoHasB(), LOCAL_PORT);
    expect(p.out).toBe(LOCAL_PORT);
    // The reply: Ethernet B -> A, ARP op 2, sender B/10.77.0.66, target A/10.77.0.2, 60 bytes.
    const f = p.buf.subarray(p.ethOff, p.ethOff + p.ethLen);
    expect(p.ethLen).toBe(60);
    expect(p.len).toBe(60 + VNET_HDR_LEN);
    expect(macAt(f, 0)).toBe(A);
    expect(macAt(f, 6)).toBe(B);
    expect(u16(f, 12)).toBe(0x0806);
    expect(u16(f, 14 + 6)).toBe(2);
    expect(macAt(f, 14 + 8)).toBe(B);
    expect(ipAt(f, 14 + 14)).toBe(B_IP);
    expect(macAt(f, 14 + 18)).toBe(A);
    expect(ipAt(f, 14 + 24)).toBe(A_IP);
    expect(s.proxy.counters(s.ctx.now)).toEqual({ answered: 1, flooded: 0, local: 0, entries: 1 });
    expect(vxlanSteps(p, s.ctx).map((x) => x.text)).toEqual([
      `arp-proxy-reply: ${B_IP} is-at ${B} (a remote station), answered locally, not sent to the peers`,
    ]);
  });

  it('learns from a decapsulated IPv4 frame (source address, source MAC)', () => {
    const s = setup();
    fromOverlay(s, icmpEcho({ srcMac: B, dstMac: A, srcIp: B_IP, dstIp: A_IP, id: 1, seq: 1 }));
    expect(runFrame(s.pipe, s.ctx, whoHasB(), LOCAL_PORT).out).toBe(LOCAL_PORT);
  });

  it('floods an unknown address, and counts it', () => {
    const s = setup();
    const p = runFrame(s.pipe, s.ctx, whoHasB(), LOCAL_PORT);
    expect(p.out).toBe(OUT_FLOOD);
    expect(s.proxy.counters(s.ctx.now)).toMatchObject({ answered: 0, flooded: 1 });
    expect(vxlanSteps(p, s.ctx).map((x) => x.text)[0]).toMatch(/^arp-proxy-flood: 10\.77\.0\.66 /);
  });

  it('ages: an entry unconfirmed for the FDB aging time is not used; a new frame confirms it again', () => {
    const s = setup(1000);
    fromOverlay(s, arpReply({ srcMac: B, srcIp: B_IP, dstMac: A, dstIp: A_IP }));
    s.ctx.now = 1000 + AGING + 1;
    // Keep the FDB entry fresh: only the proxy's own entry has aged.
    const m = parts(B);
    s.fdb.learnVtep(NET, 0, m.hi, m.lo, OVERLAY, VTEP_B, s.ctx.now);
    expect(runFrame(s.pipe, s.ctx, whoHasB(), LOCAL_PORT).out).toBe(OUT_FLOOD);
    expect(s.proxy.entries(s.ctx.now)).toEqual([]);
    fromOverlay(s, icmpEcho({ srcMac: B, dstMac: A, srcIp: B_IP, dstIp: A_IP, id: 1, seq: 2 }));
    expect(runFrame(s.pipe, s.ctx, whoHasB(), LOCAL_PORT).out).toBe(LOCAL_PORT);
  });

  it('does not answer when the MAC is no longer behind a VTEP (aged out of the FDB, or moved to a local port)', () => {
    const s = setup();
    fromOverlay(s, arpReply({ srcMac: B, srcIp: B_IP, dstMac: A, dstIp: A_IP }));
    const m = parts(B);
    s.fdb.learn(NET, 0, m.hi, m.lo, OTHER_LOCAL, s.ctx.now); // B showed up on this host
    expect(runFrame(s.pipe, s.ctx, whoHasB(), LOCAL_PORT).out).toBe(OUT_FLOOD);
    const t = setup();
    t.proxy.learnFrame(arpReply({ srcMac: B, srcIp: B_IP, dstMac: A, dstIp: A_IP }), 0, 60, t.ctx.now); // no FDB entry at all
    expect(runFrame(t.pipe, t.ctx, whoHasB(), LOCAL_PORT).out).toBe(OUT_FLOOD);
  });

  it("never answers for a local container's or the switch's address, and never learns them from the overlay", () => {
    const s = setup();
    // A remote station claiming A's address (a conflict, or a forged frame) and the gateway's.
    fromOverlay(s, arpReply({ srcMac: B, srcIp: A_IP, dstMac: A, dstIp: A_IP }));
    fromOverlay(s, arpReply({ srcMac: B, srcIp: '10.77.0.1', dstMac: A, dstIp: A_IP }));
    expect(s.proxy.entries(s.ctx.now)).toEqual([]);
    const p = runFrame(s.pipe, s.ctx, arpRequest({ srcMac: '02:42:0a:4d:00:03', srcIp: '10.77.0.3', targetIp: A_IP }), OTHER_LOCAL);
    expect(p.out).toBe(OUT_FLOOD);
    expect(s.proxy.counters(s.ctx.now)).toMatchObject({ answered: 0, local: 1 });
    // A container that comes later (a new snapshot) is local from then on.
    fromOverlay(s, arpReply({ srcMac: B, srcIp: B_IP, dstMac: A, dstIp: A_IP }));
    s.proxy.load(snapshot([A_IP, B_IP]));
    expect(runFrame(s.pipe, s.ctx, whoHasB(), LOCAL_PORT).out).toBe(OUT_FLOOD);
  });

  it('refuses multicast/broadcast MACs, addresses outside the subnet and 0.0.0.0 probes', () => {
    const s = setup();
    s.proxy.learnFrame(arpReply({ srcMac: '01:00:5e:00:00:01', srcIp: B_IP, dstMac: A, dstIp: A_IP }), 0, 60, s.ctx.now);
    s.proxy.learnFrame(arpReply({ srcMac: 'ff:ff:ff:ff:ff:ff', srcIp: B_IP, dstMac: A, dstIp: A_IP }), 0, 60, s.ctx.now);
    s.proxy.learnFrame(arpRequest({ srcMac: B, srcIp: '0.0.0.0', targetIp: B_IP }), 0, 60, s.ctx.now);
    s.proxy.learnFrame(icmpEcho({ srcMac: B, dstMac: A, srcIp: '8.8.8.8', dstIp: A_IP, id: 1, seq: 1 }), 0, 98, s.ctx.now);
    expect(s.proxy.entries(s.ctx.now)).toEqual([]);
  });

  it('leaves alone requests from the overlay, gratuitous ARP, replies; and decides without changes in a dry run', () => {
    const s = setup();
    fromOverlay(s, arpReply({ srcMac: B, srcIp: B_IP, dstMac: A, dstIp: A_IP }));
    // From the overlay (a remote asking): not ours to answer.
    expect(runFrame(s.pipe, s.ctx, arpRequest({ srcMac: '02:42:0a:4d:00:43', srcIp: '10.77.0.67', targetIp: B_IP }), OVERLAY).out).toBe(OUT_FLOOD);
    // Gratuitous (sender = target).
    expect(runFrame(s.pipe, s.ctx, arpRequest({ srcMac: A, srcIp: B_IP, targetIp: B_IP }), LOCAL_PORT).out).toBe(OUT_FLOOD);
    // A broadcast reply is not a request.
    expect(runFrame(s.pipe, s.ctx, arpReply({ srcMac: A, srcIp: A_IP, dstMac: 'ff:ff:ff:ff:ff:ff', dstIp: B_IP }), LOCAL_PORT).out).toBe(OUT_FLOOD);
    const before = s.proxy.counters(s.ctx.now);
    const frame = whoHasB();
    const dry = runFrame(s.pipe, { ...s.ctx, dryRun: true }, frame, LOCAL_PORT);
    expect(dry.out).toBe(LOCAL_PORT);
    // The request is left as it was (op 1), nothing counted.
    expect(u16(dry.buf, dry.ethOff + 14 + 6)).toBe(1);
    expect(s.proxy.counters(s.ctx.now)).toEqual(before);
  });

  it('static entries (fdb add --ip): answered without any learning, never aged, removed with their MAC; still need the FDB entry', () => {
    const s = setup();
    const m = parts(B);
    expect(s.proxy.addStatic(ip(B_IP), m.hi, m.lo)).toBe(true);
    expect(s.proxy.addStatic(ip('10.77.0.70'), 0x0100, 0x5e000001)).toBe(false); // multicast MAC refused
    expect(runFrame(s.pipe, s.ctx, whoHasB(), LOCAL_PORT).out).toBe(OUT_FLOOD); // no FDB entry behind a VTEP yet
    s.fdb.addStatic(NET, 0, m.hi, m.lo, OVERLAY, VTEP_B);
    s.ctx.now += 100 * AGING;
    expect(runFrame(s.pipe, s.ctx, whoHasB(), LOCAL_PORT).out).toBe(LOCAL_PORT);
    expect(s.proxy.entries(s.ctx.now)).toEqual([{ ip: B_IP, mac: B, ageSeconds: -1 }]);
    s.proxy.removeStatic(m.hi, m.lo);
    expect(runFrame(s.pipe, s.ctx, whoHasB(), LOCAL_PORT).out).toBe(OUT_FLOOD);
  });

  it('is off without a proxy for the network: flooded as before', () => {
    const s = setup();
    fromOverlay(s, arpReply({ srcMac: B, srcIp: B_IP, dstMac: A, dstIp: A_IP }));
    const ctx = { ...s.ctx, arpProxy: [] };
    expect(runFrame(s.pipe, ctx, whoHasB(), LOCAL_PORT).out).toBe(OUT_FLOOD);
  });
});
