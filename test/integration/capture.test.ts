// End to end: `vsw capture` writes a pcap of a port's frames, both directions, that tcpdump
// decodes: the ICMP requests and replies of a ping, in order, to a file or to stdout;
// -c stops after N frames; Ctrl-C ends it cleanly; a capture costs nothing once stopped.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupPrefix, Daemon, execInOpts, isRoot, NEEDS_ROOT, runContainers, runPrefix, sh, startDaemon, waitFor } from '../fixtures/harness';
import { vswStream } from '../fixtures/topology';

const P = runPrefix('p');
const C1 = `${P}-c1`;
const C2 = `${P}-c2`;

if (!isRoot) console.warn(`test/integration/capture.test.ts skipped: ${NEEDS_ROOT}`);

describe.skipIf(!isRoot)('vsw capture (root)', () => {
  let d: Daemon;
  let tmp = '';
  const ep: Record<string, { ip: string; mac: string; hostIf: string }> = {};

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${P}-`));
    d = await startDaemon({ prefix: P, workers: 2 });
    Object.assign(ep, await runContainers(d, [C1, C2]));
    await execInOpts(C1, ['ping', '-c', '1', '-W', '2', ep[C2].ip], { timeoutMs: 20_000 });
  }, 120_000);

  afterAll(async () => {
    if (d) await d.cleanup();
    else await cleanupPrefix(P);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  async function icmpLines(file: string): Promise<string[]> {
    const r = await sh('tcpdump', ['-n', '-r', file, 'icmp'], { timeoutMs: 20_000 });
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.trim().split('\n').filter((l) => l !== '');
  }

  it('captures c2\'s port during a ping: requests to c2 and replies from it, in order, readable by tcpdump', async () => {
    const file = path.join(tmp, 'c2.pcap');
    const cap = vswStream(d, ['capture', '--port', C2, '-w', file]);
    // The session is open once the CLI says so: the API starts it before answering.
    expect(await cap.waitLine(/^vsw: capturing on /)).toBe(`vsw: capturing on ${ep[C2].hostIf}; Ctrl-C stops`);
    const r = await execInOpts(C1, ['ping', '-c', '3', '-i', '0.2', '-W', '2', ep[C2].ip], { timeoutMs: 20_000 });
    expect(r.code, r.stdout).toBe(0);
    // The CLI writes each frame as it comes: Ctrl-C once all six are in the file.
    await waitFor('the six ICMP frames in the pcap', async () =>
      (await sh('tcpdump', ['-n', '-r', file, 'icmp'])).stdout.split('\n').filter((l) => l !== '').length >= 6, { timeoutMs: 10_000, intervalMs: 100 });
    const s = await cap.stop('SIGINT', 10_000);
    expect([s.code, s.signal], s.stderr).toEqual([0, null]);
    expect(s.stderr).toContain(`vsw: wrote ${file} (`);
    const lines = await icmpLines(file);
    expect(lines.map((l) => (/echo request/.test(l) ? 'req' : /echo reply/.test(l) ? 'rep' : l)))
      .toEqual(['req', 'rep', 'req', 'rep', 'req', 'rep']);
    expect(lines[0]).toContain(`${ep[C1].ip} > ${ep[C2].ip}: ICMP echo request`);
  }, 60_000);

  it('-c N stops by itself after N frames; -w - writes the pcap to stdout', async () => {
    const file = path.join(tmp, 'stdout.pcap');
    const cap = vswStream(d, ['capture', '--port', `${C1}:bridge`, '-c', '2', '-w', '-'], { stdoutFile: file });
    await cap.waitLine(/^vsw: capturing on .* \(2 frames\); Ctrl-C stops$/);
    await execInOpts(C1, ['ping', '-c', '3', '-i', '0.2', '-W', '2', ep[C2].ip], { timeoutMs: 20_000 });
    // No Ctrl-C: it ends on its own after the second frame (SIGKILL if it has not within 10 s).
    const exit = await cap.wait(10_000);
    expect(exit, cap.stderr()).toEqual({ code: 0, signal: null });
    expect(cap.stderr()).toMatch(/^vsw: capture ended \(\d+ bytes of frames\)$/m);
    const r = await sh('tcpdump', ['-n', '-r', file], { timeoutMs: 20_000 });
    expect(r.stdout.trim().split('\n').length, r.stdout).toBe(2);
  }, 60_000);

  it('an unknown port is a clear error (exit 1), and the switch still forwards', async () => {
    const r = await d.vsw(['capture', '--port', 'nosuch', '-w', path.join(tmp, 'x.pcap')]);
    expect([r.code, r.stderr]).toEqual([1, "vsw: no port or container named 'nosuch' (see vsw stats, vsw ps)\n"]);
    const p = await execInOpts(C1, ['ping', '-c', '1', '-W', '2', ep[C2].ip], { timeoutMs: 20_000 });
    expect(p.code).toBe(0);
  }, 60_000);
});
