import { describe, it, expect } from 'vitest';
import { Pipeline } from '../../../dataplane/pipeline';
import { OUT_FLOOD, OUT_DROP, type Packet } from '../../../dataplane/packet';
import { Fdb } from '../../../dataplane/tables/fdb';
import { PortTable } from '../../../dataplane/tables/ports';
import { DROP_REASONS } from '../../../dataplane/drops';
import type { StageContext } from '../../../dataplane/stages/stage';
import { buildEthernet } from '../../../dataplane/wire/ethernet';
import { parseMac } from '../../../dataplane/wire/mac';
import { runFrame } from '../../fixtures/pipeline';

const A = '02:42:0a:00:00:02';
const B = '02:42:0a:00:00:03';
const BCAST = 'ff:ff:ff:ff:ff:ff';

function frame(dst: string, src: string, etherType = 0x0800, payload = 46): Uint8Array {
  return buildEthernet({ dst: parseMac(dst), src: parseMac(src), etherType, payload: new Uint8Array(payload) });
}

function setup(): { pipe: Pipeline; ctx: StageContext; fdb: Fdb; ports: PortTable } {
  const fdb = new Fdb({ maxEntries: 64, maxPerPort: 16, maxPorts: 16, agingSeconds: 300 });
  const ports = new PortTable(16);
  ports.add(1, 'vswa', 7);
  ports.add(2, 'vswb', 7);
  ports.add(3, 'vswc', 7);
  ports.add(4, 'vswother', 8);
  return { pipe: new Pipeline(), ctx: { fdb, ports, now: 1000, dryRun: false, l3: null }, fdb, ports };
}

function run(s: ReturnType<typeof setup>, f: Uint8Array, inPort: number, ioFlags = 0): Packet {
  return runFrame(s.pipe, s.ctx, f, inPort, { ioFlags });
}

describe('pipeline (parse, ingress, learn, forward)', () => {
  it('floods unknown unicast and learns the source on its network', () => {
    const s = setup();
    const p = run(s, frame(B, A), 1);
    expect(p.out).toBe(OUT_FLOOD);
    expect(p.netId).toBe(7);
    expect(s.fdb.lookup(7, 0, 0x0242, 0x0a000002)).toBe(1);
    expect(s.fdb.lookup(8, 0, 0x0242, 0x0a000002)).toBe(-1);
  });

  it('sends known unicast to the learned port only', () => {
    const s = setup();
    run(s, frame(BCAST, B), 2);           // B announces itself on port 2
    const p = run(s, frame(B, A), 1);
    expect(p.out).toBe(2);
  });

  it('floods broadcast and multicast even when learned', () => {
    const s = setup();
    expect(run(s, frame(BCAST, A), 1).out).toBe(OUT_FLOOD);
    expect(run(s, frame('01:00:5e:00:00:fb', A), 1).out).toBe(OUT_FLOOD);
  });

  it('drops a frame whose destination was learned on the ingress port (reflected)', () => {
    const s = setup();
    run(s, frame(BCAST, B), 1);
    const p = run(s, frame(B, A), 1);
    expect(p.out).toBe(OUT_DROP);
    expect(DROP_REASONS[p.drop]).toBe('reflected');
  });

  it('follows a MAC that moves', () => {
    const s = setup();
    run(s, frame(BCAST, B), 2);
    run(s, frame(BCAST, B), 3);
    expect(run(s, frame(B, A), 1).out).toBe(3);
  });

  it('keeps networks apart: a MAC learned in one network is unknown in another', () => {
    const s = setup();
    run(s, frame(BCAST, B), 2);            // net 7
    const p = run(s, frame(B, A), 4);      // net 8
    expect(p.out).toBe(OUT_FLOOD);
    expect(p.netId).toBe(8);
  });

  it('drops runts, truncated frames, bad source MACs, link-local frames and unknown ports, by name', () => {
    const s = setup();
    const cases: [Uint8Array, number, number, string][] = [
      [new Uint8Array(13), 1, 0, 'runt'],
      [frame(B, A), 1, 1, 'truncated'],
      [frame(B, A), 1, 1 | 4, 'rx-queue-full'],   // cut by the kernel: queue full
      [frame(B, '01:00:5e:00:00:01'), 1, 0, 'bad-src-mac'],
      [frame(B, '00:00:00:00:00:00'), 1, 0, 'bad-src-mac'],
      [frame('01:80:c2:00:00:00', A), 1, 0, 'link-local'],
      [frame('01:80:c2:00:00:0e', A), 1, 0, 'link-local'],
      [frame(B, A), 9, 0, 'no-such-network'],
    ];
    for (const [f, port, flags, reason] of cases) {
      const p = run(s, f, port, flags);
      expect(p.out, reason).toBe(OUT_DROP);
      expect(DROP_REASONS[p.drop]).toBe(reason);
    }
    // A dropped frame with a bad source never taught the table anything.
    expect(s.fdb.counters().entries).toBe(0);
    expect(Array.from(s.pipe.ended)).toEqual([7, 1, 0, 0, 0]);
  });

  it('does not learn in a dry run', () => {
    const s = setup();
    s.ctx.dryRun = true;
    expect(run(s, frame(B, A), 1).out).toBe(OUT_FLOOD);
    expect(s.fdb.counters().entries).toBe(0);
    // A stays unknown: a frame to it is still flooded, not sent to port 1.
    expect(run(s, frame(A, B), 2).out).toBe(OUT_FLOOD);
    expect(s.fdb.lookup(7, 0, 0x0242, 0x0a000002)).toBe(-1);
    // The same frame for real is learned.
    s.ctx.dryRun = false;
    run(s, frame(B, A), 1);
    expect(run(s, frame(A, B), 2).out).toBe(1);
  });
});
