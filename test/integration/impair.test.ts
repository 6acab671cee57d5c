// End to end: link impairment (vsw impair) measured with real clients in namespaces. Two
// containers on the default network; B's port is impaired `out` (what the switch sends to
// B), so A -> B traffic is delayed, lost, reordered or rate-limited while B -> A is not.
// ping gives the delay and its spread (mdev), UDP datagrams the loss rate, iperf3 the rate
// and the reordering; the same --seed gives the same lost ping sequence numbers; `impair
// rm` restores the link; the settings survive a restart and go with their port.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EndpointInfo, ImpairInfo, TraceResult } from '../../control/types';
import {
  background, cleanupPrefix, Daemon, describeResult, execInOpts, isRoot, NEEDS_ROOT, runContainers, runPrefix, shOk,
  startDaemon, waitFor, type Background,
} from '../fixtures/harness';
import { dropCount, portStats, runEndpoint, vswStream } from '../fixtures/topology';

const P = runPrefix('im');
const A = `${P}-a`;
const B = `${P}-b`;
const C = `${P}-c`;

if (!isRoot) console.warn(`test/integration/impair.test.ts skipped: ${NEEDS_ROOT}`);

/** `ping -c N -i I` from A to B: the summary's rtt avg and mdev (ms), and the sequence numbers answered. */
async function pingRtt(dst: string, count: number, interval: string): Promise<{ avg: number; mdev: number; seqs: Set<number>; out: string }> {
  const r = await execInOpts(A, ['ping', '-n', '-c', String(count), '-i', interval, '-W', '1', dst], { timeoutMs: 60_000 });
  const m = /= [\d.]+\/([\d.]+)\/[\d.]+\/([\d.]+) ms/.exec(r.stdout);
  const seqs = new Set([...r.stdout.matchAll(/icmp_seq=(\d+)/g)].map((x) => Number(x[1])));
  return { avg: m ? Number(m[1]) : NaN, mdev: m ? Number(m[2]) : NaN, seqs, out: describeResult('ping', r) };
}

/** Python in B: count UDP datagrams on port 9999 until 1.5 s without one; prints the count. */
const UDP_SINK = `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(('0.0.0.0', 9999))
print('listening', flush=True)
n = 0
s.settimeout(10)
while True:
    try:
        s.recv(100)
    except socket.timeout:
        break
    n += 1
    s.settimeout(1.5)
print(n, flush=True)
`;

/** Python in A: N small UDP datagrams to DST:9999, paced (150 us) so nothing but the impairment loses them. */
const UDP_SOURCE = `
import socket, sys, time
dst, n = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
t = time.monotonic()
for i in range(n):
    s.sendto(b'x' * 32, (dst, 9999))
    t += 0.00015
    while time.monotonic() < t:
        pass
print('sent', n)
`;

describe.skipIf(!isRoot)('vsw impair: link impairment with real clients', () => {
  let d: Daemon;
  let ep: Record<string, EndpointInfo>;
  let iperf: Background | undefined;

  beforeAll(async () => {
    await cleanupPrefix(P);
    d = await startDaemon({ prefix: P, workers: 2 });
    ep = await runContainers(d, [A, B]);
    // Static neighbours: no ARP on the impaired port during a measurement (the seed test counts frames).
    await shOk('ip', ['-n', A, 'neigh', 'replace', ep[B].ip, 'lladdr', ep[B].mac, 'dev', 'eth0', 'nud', 'permanent']);
    await shOk('ip', ['-n', B, 'neigh', 'replace', ep[A].ip, 'lladdr', ep[A].mac, 'dev', 'eth0', 'nud', 'permanent']);
    iperf = background('ip', ['netns', 'exec', B, 'iperf3', '-s', '-B', ep[B].ip], 300_000);
    await waitFor('iperf3 -s in B to listen', async () => {
      const r = await execInOpts(B, ['ss', '-Hltn', 'sport = :5201'], { timeoutMs: 5000 });
      return r.stdout.includes('5201');
    }, { timeoutMs: 10_000 });
  }, 90_000);

  afterAll(async () => {
    await iperf?.stop();
    if (d) await d.cleanup();
    else await cleanupPrefix(P);
  }, 60_000);

  const set = (args: string[]): Promise<unknown> => d.vswOk(['impair', 'set', B, ...args]);
  const rm = (): Promise<unknown> => d.vswOk(['impair', 'rm', B]);

  it('--delay 20ms --jitter 5ms: ping\'s mean is 20 ms (within 10 %) and its mdev that of a uniform +-5 ms', async () => {
    await set(['--delay', '20ms', '--jitter', '5ms']);
    const r = await pingRtt(ep[B].ip, 200, '0.01');
    expect(r.seqs.size, r.out).toBe(200);
    expect(Math.abs(r.avg - 20), r.out).toBeLessThan(2);
    // Uniform on [15, 25]: standard deviation 5/sqrt(3) = 2.9 ms (ping's mdev is the standard deviation).
    expect(r.mdev, r.out).toBeGreaterThan(2.2);
    expect(r.mdev, r.out).toBeLessThan(3.6);
    await rm();
  }, 60_000);

  it('--direction in delays what the port receives (A\'s requests), before the pipeline', async () => {
    await d.vswOk(['impair', 'set', A, '--direction', 'in', '--delay', '10ms']);
    const r = await pingRtt(ep[B].ip, 50, '0.01');
    expect(r.seqs.size, r.out).toBe(50);
    // 10 % of the delay, plus up to 1 ms of poll() granularity (whole milliseconds, rounded up).
    expect(Math.abs(r.avg - 10), r.out).toBeLessThan(2);
    await d.vswOk(['impair', 'rm', A]);
  }, 30_000);

  it('vsw trace shows what impairment did to a frame', async () => {
    await set(['--delay', '15ms']);
    const t = vswStream(d, ['trace', '--port', A, '--filter', 'icmp', '--count', '1', '--format', 'json']);
    await t.waitLine(/tracing/);
    await pingRtt(ep[B].ip, 1, '0.2');
    expect((await t.wait(15_000)).code, t.stderr()).toBe(0);
    const r = JSON.parse(t.stdout().trim().split('\n')[0]) as TraceResult;
    expect(r.steps.find((s) => s.stage === 'impair')?.text, JSON.stringify(r)).toMatch(new RegExp(`^${ep[B].hostIf} \\(${B}\\) out: delayed 15\\.0 ms$`));
    await rm();
  }, 30_000);

  it('--loss 10% over 10,000 UDP datagrams: 10 % +- 1 % are lost, each counted as impair-loss', async () => {
    await set(['--loss', '10%']);
    const before = dropCount(await portStats(d, ep[B].hostIf), 'impair-loss');
    const sink = background('ip', ['netns', 'exec', B, 'python3', '-c', UDP_SINK], 60_000);
    await waitFor('the UDP sink in B to listen', () => sink.stdout().includes('listening'), { timeoutMs: 10_000 });
    const src = await execInOpts(A, ['python3', '-c', UDP_SOURCE, ep[B].ip, '10000'], { timeoutMs: 30_000 });
    expect(src.code, describeResult('udp source', src)).toBe(0);
    expect((await sink.wait(30_000)).code, sink.stderr()).toBe(0);
    const got = Number(sink.stdout().trim().split('\n').pop());
    const lost = 10000 - got;
    const why = `received ${got}; drops on A's port ${JSON.stringify((await portStats(d, ep[A].hostIf)).drops)}`;
    expect(lost / 10000, why).toBeGreaterThanOrEqual(0.09);
    expect(lost / 10000, why).toBeLessThanOrEqual(0.11);
    // Every lost datagram is counted; the port's other frames meanwhile (an ARP, a neighbour
    // probe) go through the same 10 % and may add one or two.
    const counted = dropCount(await portStats(d, ep[B].hostIf), 'impair-loss') - before;
    expect(counted).toBeGreaterThanOrEqual(lost);
    expect(counted).toBeLessThanOrEqual(lost + 3);
    await rm();
  }, 60_000);

  it('the same --seed gives the same lost ping sequence numbers; another seed others', async () => {
    const lostWith = async (seed: number): Promise<number[]> => {
      await set(['--loss', '20%', '--seed', String(seed)]);
      const r = await pingRtt(ep[B].ip, 60, '0.01');
      await rm();
      return [...Array(60).keys()].map((i) => i + 1).filter((s) => !r.seqs.has(s));
    };
    const first = await lostWith(42);
    expect(first.length).toBeGreaterThan(3);
    expect(await lostWith(42)).toEqual(first);
    expect(await lostWith(43)).not.toEqual(first);
  }, 60_000);

  it('--rate 10mbit holds iperf3 TCP at 10 Mbit/s +- 10 %', async () => {
    await set(['--rate', '10mbit', '--limit', '30']);
    const r = await execInOpts(A, ['iperf3', '-c', ep[B].ip, '-t', '4', '-J'], { timeoutMs: 60_000 });
    expect(r.code, describeResult('iperf3', r)).toBe(0);
    const bps = (JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
    expect(bps / 1e6, r.stdout.slice(-2000)).toBeGreaterThan(9);
    expect(bps / 1e6, r.stdout.slice(-2000)).toBeLessThan(11);
    await rm();
  }, 60_000);

  it('--reorder shows in iperf3\'s out-of-order count; impair rm restores an in-order, undelayed link', async () => {
    const ooo = async (): Promise<number> => {
      const r = await execInOpts(A, ['iperf3', '-c', ep[B].ip, '-u', '-b', '2M', '-l', '200', '-t', '2', '-J', '--get-server-output'], { timeoutMs: 60_000 });
      expect(r.code, describeResult('iperf3 -u', r)).toBe(0);
      // The receiver's count (iperf3 -s in B, text output, fetched by the client): its summary
      // says 'N datagrams received out-of-order' when N > 0.
      const text = (JSON.parse(r.stdout) as { server_output_text?: string }).server_output_text ?? '';
      expect(text, r.stdout.slice(-1500)).toMatch(/receiver/);
      return Math.max(0, ...[...text.matchAll(/(\d+) datagrams received out-of-order/g)].map((m) => Number(m[1])));
    };
    await set(['--delay', '10ms', '--reorder', '25%']);
    expect(await ooo()).toBeGreaterThan(100);
    await rm();
    expect(await ooo()).toBe(0);
    const r = await pingRtt(ep[B].ip, 20, '0.01');
    expect(r.seqs.size, r.out).toBe(20);
    expect(r.avg, r.out).toBeLessThan(5);
    expect(await d.vswJson<ImpairInfo[]>(['impair', 'ls', '--format', 'json'])).toEqual([]);
  }, 60_000);

  it('bad values change nothing; settings survive a restart and go away with their port', async () => {
    const bad = await d.vsw(['impair', 'set', B, '--delay', '20']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/expected a time with its unit/);
    const none = await d.vsw(['impair', 'set', `${P}-nosuch`, '--delay', '20ms']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no port or container/);
    const c = await runEndpoint(d, C);
    await set(['--delay', '5ms', '--loss', '1%', '--seed', '9']);
    await d.vswOk(['impair', 'set', C, '--direction', 'both', '--rate', '1mbit', '--burst', '32k']);
    const before = await d.vswJson<ImpairInfo[]>(['impair', 'ls', '--format', 'json']);
    const want = [[ep[B].hostIf, B, 'out', 'delay 5ms loss 1%'], [c.hostIf, C, 'both', 'rate 1mbit burst 32k']]
      .sort((x, y) => x[0].localeCompare(y[0]));
    expect(before.map((i) => [i.port, i.container, i.direction, i.settings])).toEqual(want);
    await d.restart();
    const after = await d.vswJson<ImpairInfo[]>(['impair', 'ls', '--format', 'json']);
    expect(after.map((i) => [i.port, i.direction, i.settings, i.seed])).toEqual(before.map((i) => [i.port, i.direction, i.settings, i.seed]));
    const r = await pingRtt(ep[B].ip, 20, '0.01');
    expect(r.avg, r.out).toBeGreaterThan(4.5);
    await d.vswOk(['rm', '-f', C]);
    const left = await d.vswJson<ImpairInfo[]>(['impair', 'ls', '--format', 'json']);
    expect(left.map((i) => i.container)).toEqual([B]);
    await rm();
  }, 90_000);
});
