// vsw events, the naming side: MAC table and connection events from the dataplane become
// named, self-describing events; the conntrack hook's records survive the ring.
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { CLI, ensureBuilt } from '../fixtures/harness';
import { followLines, skippedText } from '../../control/cli/stream';
import { EVENT_TYPES, EventBus, emitConntrack, formatEvent, type VswEvent } from '../../control/events';
import { CaptureRing, captureRingBytes } from '../../workers/capture-ring';
import { CT_EVENT_BASE, ctEventWriter, decodeCtEvent } from '../../workers/events';
import { Conntrack, CT_EV_EXPIRED, CT_EV_NEW, CT_KIND_MASQ } from '../../dataplane/tables/conntrack';
import { parseIp } from '../../dataplane/wire/ip';

const ip = (t: string): number => parseIp(t) >>> 0;

describe('connection events', () => {
  it('the hook records new and expired connections; the bus names them with their tuples', () => {
    const ring = new CaptureRing(new SharedArrayBuffer(captureRingBytes(1 << 14)));
    const ct = new Conntrack({ maxEntries: 16, maxPerSource: 16, portMin: 1024, portMax: 65535 });
    ct.hook = ctEventWriter(ring, ct);
    const h = ct.create(6, ip('10.89.0.2'), ip('198.51.100.1'), 40000, 80, ip('198.51.100.1'), ip('198.51.100.2'), 80, 40000,
      true, 3, -1, CT_KIND_MASQ, 100);
    expect(h).toBeGreaterThanOrEqual(0);
    ct.seen(h, 0x02, 60, 100);
    ct.expire(100 + 121);
    const recs = ring.drain();
    expect(recs.map((r) => r.dir)).toEqual([CT_EVENT_BASE + CT_EV_NEW, CT_EVENT_BASE + CT_EV_EXPIRED]);
    const evs = recs.map(decodeCtEvent);
    expect(evs[0]).toMatchObject({ kind: CT_EV_NEW, proto: 6, ctKind: CT_KIND_MASQ, net: 3 });
    expect(evs[0].orig).toEqual({ src: ip('10.89.0.2'), dst: ip('198.51.100.1'), sport: 40000, dport: 80 });

    const bus = new EventBus();
    const got: VswEvent[] = [];
    bus.subscribe((e) => got.push(e));
    emitConntrack(bus, evs, (id) => (id === 3 ? 'bridge' : `#${id}`));
    expect(got.map((e) => e.type)).toEqual(['conntrack-new', 'conntrack-expired']);
    expect(got[0]).toMatchObject({
      proto: 'tcp', kind: 'masquerade', network: 'bridge',
      orig: '10.89.0.2:40000 > 198.51.100.1:80', reply: '198.51.100.1:80 > 198.51.100.2:40000',
    });
    expect(formatEvent(got[0])).toMatch(/ conntrack-new proto=tcp kind=masquerade network=bridge orig=10\.89\.0\.2:40000 > 198\.51\.100\.1:80 /);
  });
});

describe('the CLI side of a stream (control/cli/stream.ts followLines)', () => {
  /** A stand-in for stdout: says whether it needs draining, and drains when told. */
  class Sink extends EventEmitter {
    writableNeedDrain = false;
  }

  it('stops reading the daemon while stdout is not drained, and reads again on drain', () => {
    const res = new PassThrough();
    const sink = new Sink();
    const lines: string[] = [];
    followLines(res as unknown as http.IncomingMessage, (l) => lines.push(l), sink as unknown as NodeJS.WriteStream);
    res.write('{"a":1}\n{"a":');
    expect(lines).toEqual(['{"a":1}']);
    expect(res.isPaused()).toBe(false);
    sink.writableNeedDrain = true; // stdout's buffer is full: nobody reads it
    res.write('2}\n');
    expect(lines).toEqual(['{"a":1}', '{"a":2}']);
    expect(res.isPaused()).toBe(true); // the socket is no longer read: the daemon's bound takes over
    res.write('{"a":3}\n');
    expect(lines.length).toBe(2);
    sink.writableNeedDrain = false;
    sink.emit('drain');
    expect(res.isPaused()).toBe(false);
    return new Promise<void>((resolve) => setImmediate(() => {
      expect(lines).toEqual(['{"a":1}', '{"a":2}', '{"a":3}']);
      resolve();
    }));
  });

  it("the API's notes are event types of their own; the skipped note's wording", () => {
    expect(EVENT_TYPES).toEqual(expect.arrayContaining(['ready', 'skipped']));
    expect(skippedText(1234, 'events')).toBe('vsw: 1234 events skipped (slow reader)\n');
  });
});

describe('vsw events against a daemon stand-in that sends ready, an event and a skipped note', () => {
  const lines = [
    { time: '2026-01-01T00:00:00.000Z', type: 'ready' },
    { time: '2026-01-01T00:00:01.000Z', type: 'network-create', network: 'n1' },
    { time: '2026-01-01T00:00:02.000Z', type: 'skipped', count: 42 },
  ];

  async function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    await ensureBuilt();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vsw-events-'));
    const socket = path.join(dir, 'vsw.sock');
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.end(lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
    });
    await new Promise<void>((resolve) => server.listen(socket, () => resolve()));
    try {
      return await new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [CLI, '--socket', socket, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c) => { stdout += c; });
        child.stderr.on('data', (c) => { stderr += c; });
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  it('text: changes only on stdout (as before), the skipped note on stderr', async () => {
    const r = await run(['events']);
    expect(r).toEqual({ code: 0, stdout: '2026-01-01T00:00:01.000Z network-create network=n1\n', stderr: 'vsw: 42 events skipped (slow reader)\n' });
  }, 30_000);

  it('json: every line as the daemon sent it, and the note on stderr too', async () => {
    const r = await run(['events', '--format', 'json']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual(lines);
    expect(r.stderr).toBe('vsw: 42 events skipped (slow reader)\n');
  }, 30_000);
});
