// TCP DNS against slowloris (control/dns/server.ts, "TCP: who gets a connection"): four
// containers hold 16 connections each to the embedded DNS (the whole table of 64), sending
// a byte now and then and reconnecting whenever one is closed. A fifth container's
// `dig +tcp` must still be answered, at once, and the cuts are counted in the metrics beside
// the DNS query results.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerInfo } from '../../control/types';
import {
  background, cleanupPrefix, Daemon, execInOpts, isRoot, NEEDS_ROOT, runPrefix, startDaemon, waitFor, type Background,
} from '../fixtures/harness';
import { runContainer } from '../fixtures/topology';

const P = runPrefix('d');
const ATTACKERS = [1, 2, 3, 4].map((i) => `${P}-a${i}`);
const CLIENT = `${P}-c`;
const METRICS = '127.0.0.1:9464'; // inside the daemon's own namespace

if (!isRoot) console.warn(`test/integration/dns-tcp.test.ts skipped: ${NEEDS_ROOT}`);

/**
 * Slowloris: PER connections to GW:53, one byte on each every EVERY s (a message announced
 * as 257 bytes that never ends), a closed one reopened at once; prints `open N` each round.
 */
const SLOWLORIS_PY = `
import socket, sys, time
gw, per, every, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
def conn():
    try:
        s = socket.create_connection((gw, 53), timeout=2)
        s.setblocking(False)
        return s
    except OSError:
        return None
socks = [conn() for _ in range(per)]
end = time.time() + secs
while time.time() < end:
    alive = 0
    for i, s in enumerate(socks):
        ok = s is not None
        if ok:
            try:
                ok = s.recv(1) != b''
            except BlockingIOError:
                pass
            except OSError:
                ok = False
        if ok:
            try:
                s.send(b'\\x01')
            except OSError:
                ok = False
        if ok:
            alive += 1
        else:
            if s is not None:
                s.close()
            socks[i] = conn()
    print('open', alive, flush=True)
    time.sleep(every)
`;

describe.skipIf(!isRoot)('TCP DNS under slowloris (root)', () => {
  let d: Daemon;
  let gw = '';
  const attacks: Background[] = [];

  beforeAll(async () => {
    d = await startDaemon({ prefix: P, workers: 2, extraArgs: ['--metrics', METRICS] });
    for (const a of ATTACKERS) await runContainer(d, a);
    const c: ContainerInfo = await runContainer(d, CLIENT);
    expect(c.networks.length).toBe(1);
    gw = (await d.vswJson<{ gateway: string }>(['network', 'inspect', 'bridge'])).gateway;
  }, 180_000);

  afterAll(async () => {
    for (const a of attacks) await a.stop('SIGKILL', 2_000).catch(() => undefined);
    if (d) await d.cleanup();
    else await cleanupPrefix(P);
  }, 60_000);

  async function digTcp(): Promise<{ ok: boolean; ms: number; out: string }> {
    const t0 = Date.now();
    const r = await execInOpts(CLIENT, ['dig', '+tcp', '+time=2', '+tries=1', `@${gw}`, ATTACKERS[0]], { timeoutMs: 20_000 });
    return { ok: r.code === 0 && /status: NOERROR/.test(r.stdout) && /ANSWER SECTION/.test(r.stdout), ms: Date.now() - t0, out: r.stdout + r.stderr };
  }

  async function dnsCounter(result: string): Promise<number> {
    const r = await execInOpts(d.hostNs, ['curl', '-sS', '--max-time', '5', `http://${METRICS}/metrics`], { timeoutMs: 15_000 });
    const m = new RegExp(`^vsw_dns_queries_total\\{result="${result}"\\} (\\d+)$`, 'm').exec(r.stdout);
    return m ? Number(m[1]) : -1;
  }

  it('4 containers x 16 slow connections: another container\'s dig +tcp is answered at once; the cuts are counted', async () => {
    const before = await digTcp();
    expect(before.ok, before.out).toBe(true);

    for (const a of ATTACKERS) {
      attacks.push(background('ip', ['netns', 'exec', a, 'python3', '-u', '-c', SLOWLORIS_PY, gw, '16', '1', '40'], 60_000));
    }
    // Every attacker holds its 16 connections for two rounds (bytes sent on each, none closed).
    await waitFor('the attackers to hold 4 x 16 connections', () => attacks.every((b) => {
      if (b.exited()) throw new Error(`an attacker exited: ${b.stderr()}`);
      return b.stdout().split('\n').filter((l) => l === 'open 16').length >= 2;
    }), { timeoutMs: 20_000, intervalMs: 100 });

    const digs: { ok: boolean; ms: number; out: string }[] = [];
    for (let i = 0; i < 3; i++) digs.push(await digTcp());
    console.log(`[dns-tcp.test] dig +tcp under slowloris: ${digs.map((x) => `${x.ok ? 'ok' : 'FAILED'} ${x.ms} ms`).join(', ')}`);
    for (const x of digs) expect(x.ok, x.out).toBe(true);
    // dig itself takes ~100 ms to start in a namespace; the deadline (5 s) would be far more.
    expect(Math.max(...digs.map((x) => x.ms))).toBeLessThan(2_000);

    // The attackers' trickled messages are cut at their deadline (5 s), and evictions counted.
    const deadline = await waitFor('tcp-deadline cuts in the metrics', async () => ((await dnsCounter('tcp-deadline')) > 0 ? dnsCounter('tcp-deadline') : 0),
      { timeoutMs: 15_000, intervalMs: 500 });
    const evicted = await dnsCounter('tcp-evicted');
    console.log(`[dns-tcp.test] metrics: tcp-deadline ${deadline}, tcp-evicted ${evicted}, tcp-refused ${await dnsCounter('tcp-refused')}`);
    expect(evicted).toBeGreaterThanOrEqual(1); // the first dig's; the next ones may find that slot before its attacker is back
    for (const a of attacks.splice(0)) await a.stop('SIGKILL', 2_000);
  }, 120_000);
});
