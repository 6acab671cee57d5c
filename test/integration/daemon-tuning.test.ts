// End to end: `vsw daemon --busy-poll USEC --rx-ring FRAMES` in a throwaway host namespace.
// Each container port's receive ring has the size asked for (its mapping in /proc/PID/maps).
// While pings flow,
// the worker busy-polls between them (vsw_worker_busy_poll_seconds_total, scraped with curl
// inside the namespace, rises by most of the time the pings took); once traffic stops it
// stops within the window, and the idle daemon uses almost no CPU (/proc/PID/stat, as top
// shows it). See test/fixtures/harness.ts for safety: port 9110 is bound only inside PREFIX-host.

import * as fs from 'fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanupPrefix, Daemon, describeResult, execIn, execInOpts, isRoot, NEEDS_ROOT, pingStats, runPrefix, runSleepers, sh, startDaemon,
} from '../fixtures/harness';

const P = runPrefix('bp');
const C1 = `${P}-c1`;
const C2 = `${P}-c2`;
const ADDR = '127.0.0.1:9110';
const BUSY_US = 200_000;

if (!isRoot) console.warn(`test/integration/daemon-tuning.test.ts skipped: ${NEEDS_ROOT}`);

/** CPU seconds (user + system, every thread) of a process, from /proc/PID/stat. */
function cpuSeconds(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime: fields 14 and 15, in clock ticks (USER_HZ 100)
}

describe.skipIf(!isRoot)('vsw daemon --busy-poll, --rx-ring (root)', () => {
  let d: Daemon;
  const ip: Record<string, string> = {};

  async function spinSeconds(): Promise<number> {
    const r = await execInOpts(d.hostNs, ['curl', '-s', '-S', '--max-time', '10', `http://${ADDR}/metrics`], { timeoutMs: 20_000 });
    expect(r.code, describeResult('curl', r)).toBe(0);
    let sum = 0;
    for (const m of r.stdout.matchAll(/^vsw_worker_busy_poll_seconds_total\{[^}]*\} (\S+)$/gm)) sum += Number(m[1]);
    expect(r.stdout).toMatch(/^# TYPE vsw_worker_busy_poll_seconds_total counter$/m);
    return sum;
  }

  /** Wait until the spin counter stops moving (two reads a window apart are equal): the workers sleep. */
  async function settled(): Promise<number> {
    let last = await spinSeconds();
    for (let i = 0; i < 40; i++) {
      await new Promise((r) => setTimeout(r, BUSY_US / 1000 + 100));
      const now = await spinSeconds();
      if (now === last) return now;
      last = now;
    }
    throw new Error(`busy-polling never stopped: vsw_worker_busy_poll_seconds_total still rising (${last})`);
  }

  beforeAll(async () => {
    d = await startDaemon({ prefix: P, workers: 1, extraArgs: ['--busy-poll', String(BUSY_US), '--rx-ring', '4096', '--metrics', ADDR] });
    Object.assign(ip, await runSleepers(d, [C1, C2]));
  }, 120_000);

  afterAll(async () => {
    if (d) await d.cleanup();
    else await cleanupPrefix(P);
  }, 60_000);

  it('says so at start; GET /info shows it', async () => {
    expect(d.log()).toContain(`busy-poll ${BUSY_US} us`);
    const r = await sh('curl', ['-s', '-S', '--max-time', '10', '--unix-socket', d.sock, 'http://vsw/info'], { timeoutMs: 20_000 });
    expect(r.code, describeResult('curl', r)).toBe(0);
    expect((JSON.parse(r.stdout) as { busyPollUs: number }).busyPollUs).toBe(BUSY_US);
  });

  it('--rx-ring 4096: the receive ring of each container port is 4096 frames of 2 KiB (8 MiB mapped; 2048 frames, 4 MiB, by default)', () => {
    const maps = fs.readFileSync(`/proc/${d.proc.pid!}/maps`, 'utf8').split('\n').filter((l) => / socket:\[\d+\]$/.test(l));
    const sizes = maps.map((l) => { const [a, b] = l.split(' ')[0].split('-'); return (parseInt(b, 16) - parseInt(a, 16)) / (1 << 20); });
    expect(sizes.filter((m) => m === 8).length, `socket mappings (MiB): ${sizes.join(', ')}`).toBeGreaterThanOrEqual(2);
    expect(sizes.filter((m) => m === 4)).toEqual([]);
  });

  it('busy-polls between frames while pings flow, and stops once they stop: the idle daemon stays idle', async () => {
    const before = await settled();
    // 20 pings 50 ms apart: each gap is inside the 200 ms window, so the worker spins through ~1 s.
    const t0 = Date.now();
    const r = await execIn(C1, 'ping', '-n', '-c', '20', '-i', '0.05', '-W', '2', ip[C2]);
    const took = (Date.now() - t0) / 1000;
    expect(pingStats(r.stdout)?.received, describeResult('ping', r)).toBe(20);
    const after = await settled();
    expect(after - before, `busy-polled ${after - before} s over pings that took ${took} s`).toBeGreaterThan(0.5 * took);
    expect(after - before).toBeLessThan(took + 2 * BUSY_US / 1e6 + 1);
    // Idle now: over 3 s, the whole daemon uses at most 5 % of a core.
    const pid = d.proc.pid!;
    const c0 = cpuSeconds(pid);
    await new Promise((res) => setTimeout(res, 3000));
    const used = cpuSeconds(pid) - c0;
    expect(used, `daemon CPU while idle: ${used} s in 3 s`).toBeLessThanOrEqual(0.15);
    expect(await spinSeconds()).toBe(after);
  }, 90_000);
});
