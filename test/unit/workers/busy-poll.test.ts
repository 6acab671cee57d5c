// --busy-poll: after a batch the loop asks poll() to spin for the configured time before it
// sleeps; with 0 (the default) it never spins. The loop runs its real run() over an
// in-memory Io whose poll() records what it was asked and stops the loop after a few calls.
import { describe, it, expect } from 'vitest';
import { WorkerLoop } from '../../../workers/loop';
import { MemoryIo } from '../../fixtures/memory-io';
import { Fdb } from '../../../dataplane/tables/fdb';
import { CTRL_BUSY_POLL_US, CTRL_STOP, statsBytes, workerCountersOffset, WK_SPIN_MS } from '../../../workers/shared';
import { buildEthernet } from '../../../dataplane/wire/ethernet';
import { parseMac } from '../../../dataplane/wire/mac';
import type { ToWorker } from '../../../workers/protocol';
import { DataplaneHost } from '../../../workers/host';

const MAXP = 16;

function frame(): Uint8Array {
  const eth = buildEthernet({ dst: parseMac('02:42:0a:00:00:03'), src: parseMac('02:42:0a:00:00:02'), etherType: 0x0800, payload: new Uint8Array(50) });
  const f = new Uint8Array(10 + eth.length);
  f.set(eth, 10);
  return f;
}

/** Run the loop until poll() was called `calls` times; a frame arrives in each call of `frameAt`. What each poll() call was asked to spin. */
function runLoop(busyPollUs: number, calls: number, frameAt: number[]): { spins: number[]; spinMs: number } {
  const io = new MemoryIo();
  const ctrl = new Int32Array(4);
  ctrl[CTRL_BUSY_POLL_US] = busyPollUs;
  const stats = new Float64Array(new SharedArrayBuffer(statsBytes(MAXP)));
  const inbox: ToWorker[] = [];
  const loop = new WorkerLoop({
    io, fdb: new Fdb({ maxEntries: 64, maxPorts: MAXP, maxPerPort: 16, agingSeconds: 300 }), stats, ctrl, eventfd: 99, maxPorts: MAXP, worker: 0,
    receive: () => inbox.shift(), reply: () => undefined, clock: () => 1000,
  });
  for (const id of [1, 2]) inbox.push({ type: 'addPort', seq: id, id, name: `p${id}`, fd: 10 + id, kind: 0, vnet: true, netId: 5, rx: true });
  loop.control();
  const spins: number[] = [];
  const poll = io.poll.bind(io);
  io.poll = (fds, n, t, rev, spin?: number) => {
    spins.push(spin ?? 0);
    if (frameAt.includes(spins.length)) io.inject(11, frame());
    if (spins.length >= calls) ctrl[CTRL_STOP] = 1;
    return poll(fds, n, t, rev);
  };
  loop.run();
  return { spins, spinMs: stats[workerCountersOffset(MAXP) + WK_SPIN_MS] };
}

describe('adaptive busy-polling', () => {
  it('off by default: poll() is never asked to spin, before or after traffic', () => {
    const r = runLoop(0, 5, [2, 3]);
    expect(r.spins).toEqual([0, 0, 0, 0, 0]);
    expect(r.spinMs).toBe(0);
  });

  it('a lone frame starts no spin: an ARP now and then leaves the switch idle', () => {
    const r = runLoop(50_000, 5, [2]);
    expect(r.spins).toEqual([0, 0, 0, 0, 0]);
  });

  it('frames closer together than --busy-poll: poll() spins for what is left of the window after the last; never before traffic', () => {
    const r = runLoop(50_000, 6, [2, 3]);
    expect(r.spins.slice(0, 3)).toEqual([0, 0, 0]); // idle, then the first frame (alone so far)
    // the second frame came in call 3, right after the first: calls 4.. spin, each for what is left of the 50 ms window
    for (const s of r.spins.slice(3)) {
      expect(s).toBeGreaterThan(40_000);
      expect(s).toBeLessThanOrEqual(50_000);
    }
    expect(r.spinMs).toBeGreaterThan(0);
  });

  it('the host refuses a busy-poll outside 0..1,000,000 us', () => {
    for (const bad of [-1, 1.5, 1_000_001]) {
      expect(() => new DataplaneHost({ workers: 1, busyPollUs: bad, fdb: { maxEntries: 16, maxPerPort: 16, agingSeconds: 300 }, io: new MemoryIo() }))
        .toThrow(/busy-poll must be 0\.\.1000000/);
    }
  });
});
