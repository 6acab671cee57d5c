// End to end: `vsw capture` writes a pcap of a port's frames, both directions, that tcpdump
// decodes: the ICMP requests and replies of a ping, in order, to a file or to stdout;
// -c stops after N frames; Ctrl-C ends it cleanly; a capture costs nothing once stopped.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cleanupPrefix, Daemon, execInOpts, isRoot, NEEDS_ROOT, NODE, runContainers, runPrefix, sh, startDaemon } from '../fixtures/harness';

const P = runPrefix('p');
const C1 = `${P}-c1`;
const C2 = `${P}-c2`;

if (!isRoot) console.warn(`test/integration/capture.test.ts skipped: ${NEEDS_ROOT}`);

function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

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

  /** Start `vsw capture` in the background; returns a function that Ctrl-Cs it. */
  function startCapture(args: string[], stdoutFile?: string): { stop(): Promise<{ code: number | null; stderr: string }> } {
    const out = stdoutFile ? fs.openSync(stdoutFile, 'w') : 'ignore';
    const child = spawn(NODE, [CLI, '--socket', d.sock, 'capture', ...args], { stdio: ['ignore', out, 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    return {
      async stop() {
        await sleep(300);
        child.kill('SIGINT');
        const code = await Promise.race([exited, sleep(10_000).then(() => { child.kill('SIGKILL'); return -1; })]);
        if (typeof out === 'number') fs.closeSync(out);
        return { code, stderr };
      },
    };
  }

  async function icmpLines(file: string): Promise<string[]> {
    const r = await sh('tcpdump', ['-n', '-r', file, 'icmp'], { timeoutMs: 20_000 });
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.trim().split('\n').filter((l) => l !== '');
  }

  it('captures c2\'s port during a ping: requests to c2 and replies from it, in order, readable by tcpdump', async () => {
    const file = path.join(tmp, 'c2.pcap');
    const cap = startCapture(['--port', C2, '-w', file]);
    await sleep(500);
    const r = await execInOpts(C1, ['ping', '-c', '3', '-i', '0.2', '-W', '2', ep[C2].ip], { timeoutMs: 20_000 });
    expect(r.code, r.stdout).toBe(0);
    const s = await cap.stop();
    expect(s.code, s.stderr).toBe(0);
    expect(s.stderr).toContain(`capturing on ${ep[C2].hostIf}`);
    const lines = await icmpLines(file);
    expect(lines.map((l) => (/echo request/.test(l) ? 'req' : /echo reply/.test(l) ? 'rep' : l)))
      .toEqual(['req', 'rep', 'req', 'rep', 'req', 'rep']);
    expect(lines[0]).toContain(`${ep[C1].ip} > ${ep[C2].ip}: ICMP echo request`);
  }, 60_000);

  it('-c N stops by itself after N frames; -w - writes the pcap to stdout', async () => {
    const file = path.join(tmp, 'stdout.pcap');
    const cap = startCapture(['--port', `${C1}:bridge`, '-c', '2', '-w', '-'], file);
    await sleep(500);
    await execInOpts(C1, ['ping', '-c', '3', '-i', '0.2', '-W', '2', ep[C2].ip], { timeoutMs: 20_000 });
    const s = await cap.stop();
    expect(s.code, s.stderr).toBe(0);
    const r = await sh('tcpdump', ['-n', '-r', file], { timeoutMs: 20_000 });
    expect(r.stdout.trim().split('\n').length).toBe(2);
  }, 60_000);

  it('an unknown port is a clear error (exit 1), and the switch still forwards', async () => {
    const r = await d.vsw(['capture', '--port', 'nosuch', '-w', path.join(tmp, 'x.pcap')]);
    expect([r.code, r.stderr]).toEqual([1, "vsw: no port or container named 'nosuch' (see vsw stats, vsw ps)\n"]);
    const p = await execInOpts(C1, ['ping', '-c', '1', '-W', '2', ep[C2].ip], { timeoutMs: 20_000 });
    expect(p.code).toBe(0);
  }, 60_000);
});
