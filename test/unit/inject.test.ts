import { describe, it, expect, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runInject, type InjectProgress, type InjectSpec } from '../../control/inject';
import { pcapHeader, pcapRecord } from '../../control/pcap';
import { DROP } from '../../dataplane/drops';
import { MAX_BATCH } from '../../workers/io';
import type { InjectTally } from '../../workers/protocol';
import { arpRequest, icmpEcho } from '../fixtures/frames';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vsw-inject-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const A = { srcMac: '02:42:0a:00:00:02', dstMac: '02:42:0a:00:00:03', srcIp: '10.0.0.2', dstIp: '10.0.0.3' };

/** 100 pings and an ARP request, 1 ms apart; the 50th cut by the snap length. */
function capture(): string {
  const recs = Array.from({ length: 100 }, (_, i) => pcapRecord(icmpEcho({ ...A, id: 1, seq: i }), 1_700_000_000_000 + i));
  recs[49].writeUInt32LE(recs[49].readUInt32LE(8) + 20, 12);
  recs.push(pcapRecord(arpRequest({ srcMac: A.srcMac, srcIp: A.srcIp, targetIp: A.dstIp }), 1_700_000_000_100));
  const f = path.join(dir, 'c.pcap');
  fs.writeFileSync(f, Buffer.concat([pcapHeader(), ...recs]));
  return f;
}

/** A port's worker that forwards pings and drops ARP as 'reflected', recording each batch. */
function worker(): { into: (f: Uint8Array, lens: number[]) => Promise<InjectTally>; batches: number[][] } {
  const batches: number[][] = [];
  return {
    batches,
    into: async (frames, lens) => {
      batches.push(lens);
      const t: InjectTally = { forwarded: 0, local: 0, impaired: 0, drops: [] };
      let at = 0;
      for (const l of lens) {
        if (((frames[at + 12] << 8) | frames[at + 13]) === 0x0806) t.drops[DROP.reflected] = (t.drops[DROP.reflected] ?? 0) + 1;
        else t.forwarded++;
        at += l;
      }
      return t;
    },
  };
}

describe('vsw inject (control/inject.ts)', () => {
  const file = capture();
  const spec = (o: Partial<InjectSpec>): InjectSpec => ({ port: 'a', pcap: file, timing: 'top-speed', ...o });

  it('sends what the capture can carry in batches, and sums the worker\'s verdicts', async () => {
    const w = worker();
    const s = await runInject(spec({ loop: 2 }), 'vswa', w.into, () => undefined, () => false);
    expect(s).toMatchObject({
      type: 'summary', port: 'vswa', total: 202, sent: 200, filteredOut: 0, notSent: { 'snap-cut': 2, runt: 0, oversize: 0 },
      forwarded: 198, local: 0, dropped: { reflected: 2 }, stopped: false,
    });
    expect(w.batches.every((b) => b.length <= MAX_BATCH)).toBe(true);
    expect(w.batches.flat()).toEqual(new Array(200).fill(42)); // 42-byte pings and ARP requests
  });

  it('keeps only what --filter matches, and stops when the client goes away', async () => {
    const w = worker();
    const f = await runInject(spec({ filter: 'arp' }), 'vswa', w.into, () => undefined, () => false);
    expect(f).toMatchObject({ sent: 1, filteredOut: 99, dropped: { reflected: 1 }, forwarded: 0 });
    let n = 0;
    const stop = await runInject(spec({ loop: 5 }), 'vswa', w.into, () => undefined, () => ++n > 30);
    expect(stop.stopped).toBe(true);
    expect(stop.sent).toBe(30);
  });

  it('paces --rate by its clock and tells progress', async () => {
    const w = worker();
    let now = 0;
    const seen: InjectProgress[] = [];
    // A clock that moves 1 ms per reading: 101 records at 200 frames/s take about half a second of it.
    const s = await runInject(spec({ timing: 'rate', rate: 200_000 }), 'vswa', w.into, (p) => seen.push(p), () => false, () => (now += 1));
    expect(s.sent).toBe(100);
    expect(seen.at(-1)).toMatchObject({ type: 'progress', done: 101, total: 101, sent: 100 });
  });

  it('refuses a bad spec or a damaged file before sending anything', async () => {
    const w = worker();
    const bad = path.join(dir, 'bad.pcap');
    fs.writeFileSync(bad, fs.readFileSync(file).subarray(0, 500));
    await expect(runInject(spec({ pcap: bad }), 'p', w.into, () => undefined, () => false)).rejects.toThrow(/bad\.pcap: truncated record header at byte 488/);
    await expect(runInject(spec({ timing: 'rate' }), 'p', w.into, () => undefined, () => false)).rejects.toThrow(/timing rate needs a rate/);
    await expect(runInject(spec({ pcap: 'rel.pcap' }), 'p', w.into, () => undefined, () => false)).rejects.toThrow(/absolute path/);
    await expect(runInject(spec({ filter: 'port' }), 'p', w.into, () => undefined, () => false)).rejects.toThrow(/filter/);
    expect(w.batches).toEqual([]);
  });
});
