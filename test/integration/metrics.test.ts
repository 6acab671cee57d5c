// End to end: `vsw daemon --metrics 127.0.0.1:9109` in a throwaway host namespace, scraped
// with curl inside that namespace. The counters rise with a ping between two containers,
// the text is accepted by a real parser (parse-prometheus-text-format, plus a line-by-line
// check of the format), a second daemon on the same address fails clearly and leaves
// nothing behind, a bad --metrics is a usage error. See test/fixtures/harness.ts for safety:
// port 9109 is bound only inside PREFIX-host.

import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DROP_REASONS } from '../../dataplane/drops';
import {
  CLI, cleanupPrefix, Daemon, describeResult, execIn, execInOpts, isRoot, NEEDS_ROOT, NODE, pingStats,
  runPrefix, runSleepers, sh, startDaemon,
} from '../fixtures/harness';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const parsePrometheusTextFormat = require('parse-prometheus-text-format') as (text: string) => {
  name: string; help: string; type: string; metrics: { value?: string; labels?: Record<string, string> }[];
}[];

const P = runPrefix('q');
const C1 = `${P}-c1`;
const C2 = `${P}-c2`;
const ADDR = '127.0.0.1:9109';

if (!isRoot) console.warn(`test/integration/metrics.test.ts skipped: ${NEEDS_ROOT}`);

/** Samples of the text: name -> list of { labels, value }. */
type Samples = Map<string, { labels: Record<string, string>; value: number }[]>;

/** Parse with the real parser; also check every line's shape and one TYPE per family. */
function parse(text: string): Samples {
  const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\})? (\S+)$/;
  const typed = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const t = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (t) { expect(typed.has(t[1]), `second TYPE for ${t[1]}`).toBe(false); typed.add(t[1]); continue; }
    if (line.startsWith('# HELP ')) continue;
    const m = sample.exec(line);
    expect(m, `not a sample line: ${line}`).not.toBeNull();
    expect(m![4], `value of: ${line}`).toMatch(/^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:inf|infinity)|nan)$/i);
  }
  const out: Samples = new Map();
  for (const f of parsePrometheusTextFormat(text)) {
    expect(typed.has(f.name), `${f.name} has a TYPE`).toBe(true);
    out.set(f.name, f.metrics.map((x) => ({ labels: x.labels ?? {}, value: Number(x.value) })));
  }
  return out;
}

function value(s: Samples, name: string, labels: Record<string, string> = {}): number {
  const hit = (s.get(name) ?? []).find((x) => Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  if (!hit) throw new Error(`no series ${name}${JSON.stringify(labels)}`);
  return hit.value;
}

describe.skipIf(!isRoot)('vsw daemon --metrics (root)', () => {
  let d: Daemon;
  const ip: Record<string, string> = {};

  async function curl(p = '/metrics', extra: string[] = []): Promise<{ status: number; type: string; body: string }> {
    const r = await execInOpts(d.hostNs, ['curl', '-s', '-S', '--max-time', '10', '-D', '-', ...extra, `http://${ADDR}${p}`], { timeoutMs: 20_000 });
    expect(r.code, describeResult('curl', r)).toBe(0);
    const [head, ...rest] = r.stdout.split('\r\n\r\n');
    return {
      status: Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1]),
      type: /^content-type: (.*)$/im.exec(head)?.[1] ?? '',
      body: rest.join('\r\n\r\n'),
    };
  }

  async function scrape(): Promise<Samples> {
    const r = await curl();
    expect(r.status).toBe(200);
    return parse(r.body);
  }

  beforeAll(async () => {
    d = await startDaemon({ prefix: P, workers: 2, extraArgs: ['--metrics', ADDR] });
    Object.assign(ip, await runSleepers(d, [C1, C2]));
  }, 120_000);

  afterAll(async () => {
    if (d) await d.cleanup();
    else await cleanupPrefix(P);
  }, 60_000);

  it('answers GET /metrics inside the daemon\'s namespace with text/plain version 0.0.4; 404 elsewhere', async () => {
    expect(d.log()).toContain(`metrics: http://${ADDR}/metrics`);
    const r = await curl();
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const name of ['vsw_port_rx_packets_total', 'vsw_port_drops_total', 'vsw_stage_ended_total', 'vsw_fdb_entries',
      'vsw_worker_busy_seconds_total', 'vsw_networks', 'vsw_containers', 'vsw_process_cpu_user_seconds_total']) {
      expect(r.body).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
    }
    expect((await curl('/')).status).toBe(404);
    expect((await curl('/nope')).status).toBe(404);
    // Not reachable from outside the daemon's namespace (the test's own namespace).
    const outside = await sh('curl', ['-s', '--max-time', '2', `http://${ADDR}/metrics`], { timeoutMs: 10_000 });
    expect(outside.stdout).not.toContain('vsw_port_rx_packets_total');
  });

  it('counts a ping between two containers: rx/tx of their ports rise, the FDB has both', async () => {
    const before = await scrape();
    const port = (c: string): Record<string, string> => ({ network: 'bridge', container: c, kind: 'afpacket' });
    const r = await execIn(C1, 'ping', '-n', '-c', '3', '-i', '0.2', '-W', '3', ip[C2]);
    expect(pingStats(r.stdout)?.received, describeResult('ping', r)).toBe(3);
    const after = await scrape();
    for (const c of [C1, C2]) {
      for (const m of ['vsw_port_rx_packets_total', 'vsw_port_tx_packets_total']) {
        expect(value(after, m, port(c)) - value(before, m, port(c)), `${m} of ${c}`).toBeGreaterThanOrEqual(3);
      }
      expect(value(after, 'vsw_port_rx_bytes_total', port(c))).toBeGreaterThan(value(before, 'vsw_port_rx_bytes_total', port(c)));
      // Every drop reason has a series, zero included.
      for (const reason of DROP_REASONS) expect(() => value(after, 'vsw_port_drops_total', { ...port(c), reason })).not.toThrow();
    }
    // c1's first frame to c2 follows an ARP request, a broadcast: flooded to the host's port (the TAP) too.
    const hostTx = (s: Samples): number => value(s, 'vsw_port_tx_packets_total', { port: 'vsw0', container: '', kind: 'tap' });
    expect(hostTx(after) - hostTx(before), 'vsw0 tx (the ARP broadcast)').toBeGreaterThanOrEqual(1);
    expect(value(after, 'vsw_fdb_entries')).toBeGreaterThanOrEqual(2);
    expect(value(after, 'vsw_fdb_learned_total')).toBeGreaterThanOrEqual(2);
    const ended = (after.get('vsw_stage_ended_total') ?? []).reduce((sum, x) => sum + x.value, 0);
    expect(ended).toBeGreaterThanOrEqual(6);
    const frames = (after.get('vsw_worker_frames_total') ?? []).reduce((sum, x) => sum + x.value, 0);
    expect(frames).toBeGreaterThanOrEqual(6);
    expect(after.get('vsw_worker_ports')?.map((x) => x.labels.worker).sort()).toEqual(['0', '1']);
    expect(value(after, 'vsw_networks')).toBe(1);
    expect(value(after, 'vsw_containers')).toBe(2);
    // The same numbers `vsw stats` gives (read after the scrape: equal or higher).
    const stats = await d.vswJson<{ container?: string; rxPackets: number }[]>(['stats', '--format', 'json']);
    for (const c of [C1, C2]) {
      expect(stats.find((s) => s.container === c)!.rxPackets).toBeGreaterThanOrEqual(value(after, 'vsw_port_rx_packets_total', port(c)));
    }
  }, 60_000);

  it('a second daemon on the same address fails clearly (exit 1) and leaves nothing behind', async () => {
    const base = fs.mkdtempSync(path.join(path.dirname(d.stateDir), 'second-'));
    const state = path.join(base, 'state');
    const sock = path.join(base, 'vsw.sock');
    const links = (await execIn(d.hostNs, 'ip', '-o', 'link')).stdout.split('\n').map((l) => l.split(':')[1]).sort();
    const r = await sh('ip', ['netns', 'exec', d.hostNs, NODE, CLI, '--socket', sock, 'daemon', '--state-dir', state, '--metrics', ADDR],
      { timeoutMs: 30_000 });
    expect(r.timedOut, describeResult('second daemon', r)).toBe(false);
    expect(r.code, describeResult('second daemon', r)).toBe(1);
    expect(r.stderr).toContain(`vsw: --metrics ${ADDR}: cannot listen: the address is already in use`);
    expect(fs.existsSync(sock)).toBe(false);
    expect(fs.existsSync(state)).toBe(false);
    expect((await execIn(d.hostNs, 'ip', '-o', 'link')).stdout.split('\n').map((l) => l.split(':')[1]).sort()).toEqual(links);
    // The first one still serves.
    expect(value(await scrape(), 'vsw_containers')).toBe(2);
    fs.rmSync(base, { recursive: true, force: true });
  }, 60_000);

  it('a bad --metrics is a usage error (exit 2) that says what is wrong', async () => {
    for (const [addr, says] of [['nope', /not HOST:PORT or :PORT/], [':99999', /port must be a number from 1 to 65535/], ['1.2.3.400:80', /not an IPv4 address/]] as const) {
      const r = await sh(NODE, [CLI, 'daemon', '--state-dir', '/nonexistent/vsw-metrics-test', '--metrics', addr], { timeoutMs: 20_000 });
      expect(r.code, describeResult(`daemon --metrics ${addr}`, r)).toBe(2);
      expect(r.stderr).toMatch(says);
    }
    expect(fs.existsSync('/nonexistent/vsw-metrics-test')).toBe(false);
  });

  it('stops serving when the daemon stops', async () => {
    const s = await d.stop('SIGINT');
    expect(s.code).toBe(0);
    const r = await execInOpts(d.hostNs, ['curl', '-s', '--max-time', '3', `http://${ADDR}/metrics`], { timeoutMs: 10_000 });
    expect(r.code).not.toBe(0); // connection refused
  });
});
