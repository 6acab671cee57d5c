// workers/loop.ts with link impairment (vsw impair) over an in-memory Io: frames wait in the
// port's queue and leave when releaseDue() is called at their time, in either direction;
// nothing else changes for the ports that are not impaired.
import { describe, it, expect } from 'vitest';
import { WorkerLoop } from '../../../workers/loop';
import { MemoryIo } from '../../fixtures/memory-io';
import { Fdb } from '../../../dataplane/tables/fdb';
import { statsBytes } from '../../../workers/shared';
import { dropsOf, portCounters } from '../../fixtures/counters';
import { buildEthernet } from '../../../dataplane/wire/ethernet';
import { parseMac } from '../../../dataplane/wire/mac';
import { emptySpec, type ImpairSpec } from '../../../dataplane/impair/spec';
import type { ToWorker } from '../../../workers/protocol';

const MAXP = 16;
const A = '02:42:0a:00:00:02';
const BCAST = 'ff:ff:ff:ff:ff:ff';

function vframe(dst: string, src: string, fill: number): Uint8Array {
  const eth = buildEthernet({ dst: parseMac(dst), src: parseMac(src), etherType: 0x0800, payload: new Uint8Array(50).fill(fill) });
  const f = new Uint8Array(10 + eth.length);
  f.set(eth, 10);
  return f;
}

function setup() {
  const io = new MemoryIo();
  const fdb = new Fdb({ maxEntries: 64, maxPerPort: 16, maxPorts: MAXP, agingSeconds: 300 });
  const stats = new Float64Array(new SharedArrayBuffer(statsBytes(MAXP)));
  const inbox: ToWorker[] = [];
  const acks: { seq: number; error?: string }[] = [];
  const loop = new WorkerLoop({
    io, fdb, stats, ctrl: new Int32Array(4), eventfd: 99, maxPorts: MAXP, worker: 0,
    receive: () => inbox.shift(), reply: (m) => acks.push(m), clock: () => 1000,
  });
  for (const id of [1, 2, 3]) inbox.push({ type: 'addPort', seq: id, id, name: `p${id}`, fd: 10 + id, kind: 0, vnet: true, netId: 5, rx: true });
  loop.control();
  const impair = (id: number, o: { in?: Partial<ImpairSpec>; out?: Partial<ImpairSpec> }): void => {
    inbox.push({
      type: 'impair', seq: 100, id, in: o.in && { ...emptySpec(1), ...o.in }, out: o.out && { ...emptySpec(1), ...o.out },
    });
    loop.control();
  };
  return { io, stats, loop, acks, impair };
}

describe('WorkerLoop with an impaired port', () => {
  it('out: frames to the port wait their delay; the other ports get theirs at once', () => {
    const s = setup();
    s.impair(2, { out: { delay: 20 } });
    expect(s.acks.at(-1)?.error).toBeUndefined();
    const f = vframe(BCAST, A, 1);
    s.io.inject(11, f);
    const t0 = performance.now();
    s.loop.serve(s.loop.port(1)!);
    expect(s.io.sent.get(13)).toEqual([f]);
    expect(s.io.sent.get(12)).toBeUndefined();
    s.loop.releaseDue(t0 + 10);
    expect(s.io.sent.get(12)).toBeUndefined();
    s.loop.releaseDue(t0 + 1000);
    expect(s.io.sent.get(12)).toEqual([f]);
    expect(portCounters(s.stats, 2)).toMatchObject({ txPackets: 1, txBytes: f.length - 10 });
  });

  it('in: frames received on the port are counted at once and go through the pipeline when due', () => {
    const s = setup();
    s.impair(1, { in: { delay: 30 } });
    const f = vframe(BCAST, A, 2);
    s.io.inject(11, f);
    const t0 = performance.now();
    s.loop.serve(s.loop.port(1)!);
    expect(portCounters(s.stats, 1)).toMatchObject({ rxPackets: 1 });
    expect(s.io.sent.get(12)).toBeUndefined();
    s.loop.releaseDue(t0 + 1000);
    expect(s.io.sent.get(12)).toEqual([f]);
    expect(s.io.sent.get(13)).toEqual([f]);
    expect(portCounters(s.stats, 1)).toMatchObject({ rxPackets: 1 });
  });

  it('loss is counted on the impaired port; removing the impairment sends what waits at once', () => {
    const s = setup();
    s.impair(2, { out: { loss: 1 } });
    s.io.inject(11, vframe(BCAST, A, 3));
    s.loop.serve(s.loop.port(1)!);
    s.loop.releaseDue(performance.now() + 1000);
    expect(s.io.sent.get(12)).toBeUndefined();
    expect(dropsOf(s.stats, 2)['impair-loss']).toBe(1);

    s.impair(2, { out: { delay: 60_000 } });
    const f = vframe(BCAST, A, 4);
    s.io.inject(11, f);
    s.loop.serve(s.loop.port(1)!);
    expect(s.io.sent.get(12)).toBeUndefined();
    s.impair(2, {});
    expect(s.io.sent.get(12)).toEqual([f]);
  });

  it('an impairment on a port that is not there is refused (acked with an error)', () => {
    const s = setup();
    s.impair(9, { out: { delay: 1 } });
    expect(s.acks.at(-1)?.error).toMatch(/no port 9/);
  });
});
