// Slow readers on the daemon's streams (docs/STREAMS.md): a MAC flood from a container makes
// tens of thousands of events a second; a client of /events that never reads, and a
// `vsw events` whose stdout nobody reads, must not make the daemon or the CLI grow. Once
// they read again they are told how many events they missed.
//
// Memory is the kernel's VmRSS of each process (/proc/PID/status), sampled during the flood.

import * as fs from 'fs';
import * as http from 'http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerInfo, VswEvent } from '../../control/types';
import { background, CLI, cleanupPrefix, Daemon, execInOpts, isRoot, NEEDS_ROOT, NODE, runPrefix, startDaemon, waitFor } from '../fixtures/harness';
import { runContainer } from '../fixtures/topology';

const P = runPrefix('s');
const ATTACKER = `${P}-flood`;
const FLOOD_S = 8;
const METRICS = '127.0.0.1:9464'; // inside the daemon's own namespace

if (!isRoot) console.warn(`test/integration/streams.test.ts skipped: ${NEEDS_ROOT}`);

/** Resident memory of a process, in MB. */
function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}

/** The node process behind `ip netns exec ... node` (ip execs it: the same pid). */
function nodePid(pid: number): number {
  const comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  if (comm !== 'node') throw new Error(`pid ${pid} is ${comm}, not node`);
  return pid;
}

/** Frames with a new source MAC each, as fast as python can send them, for `seconds`. */
const FLOOD_PY = `
import socket, struct, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('eth0', 0))
dst = bytes.fromhex('020000000001')
rest = b'\\x88\\xb5' + bytes(46)
end = time.time() + float(sys.argv[1])
n = 0
while time.time() < end:
    for _ in range(500):
        n += 1
        s.send(dst + b'\\x02\\xaa' + struct.pack('>I', n) + rest)
print(n)
`;

/** Run the flood from the attacker's namespace; resolves with the frames sent. Samples `pids`' RSS meanwhile: the peaks. */
async function flood(pids: number[]): Promise<{ frames: number; peak: number[] }> {
  const peak = pids.map(rssMb);
  const f = background('ip', ['netns', 'exec', ATTACKER, 'python3', '-c', FLOOD_PY, String(FLOOD_S)], (FLOOD_S + 30) * 1000);
  const sample = setInterval(() => { pids.forEach((p, i) => { try { peak[i] = Math.max(peak[i], rssMb(p)); } catch { /* gone */ } }); }, 100);
  try {
    const r = await f.wait((FLOOD_S + 20) * 1000);
    if (r.code !== 0) throw new Error(`the flood failed (${r.code}): ${f.stderr()}`);
  } finally {
    clearInterval(sample);
  }
  return { frames: Number(f.stdout().trim()), peak };
}

describe.skipIf(!isRoot)('slow readers on the streams (root)', () => {
  let d: Daemon;

  beforeAll(async () => {
    d = await startDaemon({ prefix: P, workers: 2, extraArgs: ['--metrics', METRICS] });
    // The flood's frames carry made-up source MACs: on a network with port security (the
    // default) they end at ingress as spoofed-source and make no FDB events. The flood needs
    // them learned, so the attacker's network has port security off.
    await d.vswOk(['network', 'create', '--port-security', 'off', `${P}-open`]);
    const c: ContainerInfo = await runContainer(d, ATTACKER, { network: `${P}-open` });
    expect(c.networks.length).toBe(1);
  }, 120_000);

  afterAll(async () => {
    if (d) await d.cleanup();
    else await cleanupPrefix(P);
  }, 60_000);

  it('a client of /events that never reads: the daemon stays bounded, and is told how many it missed once it reads', async () => {
    const daemon = nodePid(d.proc.pid!);
    // A raw HTTP client on the API socket: it reads the ready line, then not a byte more.
    let text = '';
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.get({ socketPath: d.sock, path: '/events', agent: false }, resolve);
      req.on('error', reject);
    });
    res.setEncoding('utf8');
    res.on('data', (t: string) => { text += t; });
    const lines = (): VswEvent[] => text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as VswEvent);
    await waitFor('the ready line', () => lines().some((e) => e.type === 'ready'), { timeoutMs: 10_000, intervalMs: 20 });
    res.pause();
    const before = rssMb(daemon);

    const { frames, peak } = await flood([daemon]);
    console.log(`[streams.test] /events paused: ${frames} frames; daemon RSS ${before.toFixed(0)} -> peak ${peak[0].toFixed(0)} MB`);

    expect(peak[0] - before).toBeLessThan(80); // unbounded (before the fix): +160 MB in 8 s

    res.resume();
    const skipped = await waitFor('the skipped line', () => lines().find((e) => e.type === 'skipped'), { timeoutMs: 15_000, intervalMs: 50 });
    const got = lines().filter((e) => e.type === 'mac-learned' || e.type === 'mac-evicted').length;
    console.log(`[streams.test] /events: ${got} events delivered, ${String(skipped.count)} skipped`);
    expect(frames).toBeGreaterThan(100_000);
    expect(Number(skipped.count)).toBeGreaterThan(50_000); // > 10 MB of JSON that was not queued
    res.destroy();
  }, 120_000);

  it('`vsw events` with a stdout nobody reads: the CLI stays bounded (it stops reading), then says what it missed', async () => {
    const cli = background(NODE, [CLI, '--socket', d.sock, 'events', '--format', 'json'], 120_000);
    await waitFor('vsw events to print its ready line', () => {
      if (cli.exited()) throw new Error(`vsw events exited: ${cli.stderr()}`);
      return cli.stdout().includes('"type":"ready"');
    }, { timeoutMs: 15_000, intervalMs: 20 });
    cli.proc.stdout!.pause(); // nobody reads its stdout from now on
    const pid = cli.proc.pid!;
    const daemon = nodePid(d.proc.pid!);
    const before = [rssMb(pid), rssMb(daemon)];

    const { frames, peak } = await flood([pid, daemon]);
    console.log(`[streams.test] vsw events, stdout unread: ${frames} frames; CLI RSS ${before[0].toFixed(0)} -> peak ${peak[0].toFixed(0)} MB, daemon ${before[1].toFixed(0)} -> ${peak[1].toFixed(0)} MB`);

    expect(peak[0] - before[0]).toBeLessThan(25); // before the fix: +50 MB in 8 s, and growing
    expect(peak[1] - before[1]).toBeLessThan(80);

    cli.proc.stdout!.resume();
    // It says so each time it has caught up after a gap: the total over those lines.
    const told = (): number[] => [...cli.stderr().matchAll(/^vsw: (\d+) events skipped \(slow reader\)$/gm)].map((m) => Number(m[1]));
    const total = (): number => told().reduce((a, b) => a + b, 0);
    await waitFor('vsw events to say it skipped > 50,000 events', () => total() > 50_000, { timeoutMs: 15_000, intervalMs: 50 });
    console.log(`[streams.test] vsw events: told ${told().length} time(s), ${total()} events skipped in all`);
    expect(total()).toBeGreaterThan(50_000);
    expect(cli.stdout()).toMatch(/"type":"skipped","count":\d+/);
    await cli.stop('SIGINT');
  }, 120_000);

  it('`vsw trace` and `vsw capture -w -` with stdouts nobody reads: both CLIs and the daemon stay bounded; the skips are told and counted', async () => {
    const skippedMetric = async (stream: string): Promise<number> => {
      const r = await execInOpts(d.hostNs, ['curl', '-sS', '--max-time', '5', `http://${METRICS}/metrics`], { timeoutMs: 15_000 });
      const m = new RegExp(`^vsw_stream_skipped_total\\{stream="${stream}"\\} (\\d+)$`, 'm').exec(r.stdout);
      if (!m) throw new Error(`no vsw_stream_skipped_total{stream="${stream}"} in the metrics`);
      return Number(m[1]);
    };
    const skipped0 = { trace: await skippedMetric('trace'), capture: await skippedMetric('capture') };
    const trace = background(NODE, [CLI, '--socket', d.sock, 'trace', '--port', ATTACKER, '--format', 'json'], 120_000);
    const cap = background(NODE, [CLI, '--socket', d.sock, 'capture', '--port', ATTACKER, '-w', '-'], 120_000);
    for (const [b, re] of [[trace, /^vsw: tracing port /m], [cap, /^vsw: capturing on /m]] as const) {
      await waitFor(`${re} on stderr`, () => {
        if (b.exited()) throw new Error(`it exited: ${b.stderr()}`);
        return re.test(b.stderr());
      }, { timeoutMs: 15_000, intervalMs: 20 });
      b.proc.stdout!.pause();
    }
    const pids = [trace.proc.pid!, cap.proc.pid!, nodePid(d.proc.pid!)];
    const before = pids.map(rssMb);

    const { frames, peak } = await flood(pids);
    const grew = peak.map((p, i) => p - before[i]);
    console.log(`[streams.test] trace + capture, stdouts unread: ${frames} frames; RSS growth trace CLI ${grew[0].toFixed(0)}, capture CLI ${grew[1].toFixed(0)}, daemon ${grew[2].toFixed(0)} MB`);
    expect(grew[0]).toBeLessThan(25);
    expect(grew[1]).toBeLessThan(25);
    expect(grew[2]).toBeLessThan(120);

    const skipped = { trace: (await skippedMetric('trace')) - skipped0.trace, capture: (await skippedMetric('capture')) - skipped0.capture };
    console.log(`[streams.test] skipped: ${JSON.stringify(skipped)}`);
    expect(skipped.trace).toBeGreaterThan(10_000);
    expect(skipped.capture).toBeGreaterThan(10_000);
    trace.proc.stdout!.resume();
    cap.proc.stdout!.resume();
    const line = await waitFor('vsw trace to say it skipped frames', () => /^vsw: (\d+) traced frames skipped \(slow reader\)$/m.exec(trace.stderr()),
      { timeoutMs: 15_000, intervalMs: 50 });
    expect(Number(line[1])).toBeGreaterThan(0);
    await trace.stop('SIGINT');
    await cap.stop('SIGINT');
  }, 120_000);
});
