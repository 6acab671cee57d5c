// End to end: injection and deterministic replay (issue 14, docs/EXPERIMENTS.md). One daemon
// with an uplink to an "outside" namespace (a web server there), two containers.
// (1) A capture tcpdump made in one container is injected onto its port: tcpdump in the
//     other container sees the frames again, and the summary counts them.
// (2) A live session is recorded -- `vsw snapshot -w` first, then `vsw capture --all-ports`
//     during ARP, pings, a TCP transfer (iperf3 between the containers), DNS (a name asked of
//     the gateway) and NAT (curl to the outside) -- and replayed offline from the snapshot
//     and the received-side captures. What is compared: for every port, the frames the live
//     switch sent on it (DIR/PORT.out.pcap) and the frames replay wrote for it
//     (OUT/PORT.pcap), byte for byte and in order; timestamps are not compared. Checksum
//     offloads are off in the namespaces here: a pcap cannot record that a frame's checksum
//     was left to the NIC (CHECKSUM_PARTIAL), and NAT rewrites such a checksum differently
//     (docs/EXPERIMENTS.md says so).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { NetworkInfo } from '../../control/types';
import type { ReplaySummary } from '../../control/replay';
import type { InjectSummary } from '../../control/inject';
import { readPcap } from '../../control/pcap-read';
import {
  background, capture, cleanupPrefix, CLI, Daemon, describeResult, execIn, execInOpts, isRoot, NEEDS_ROOT, NODE,
  runPrefix, sh, shOk, startDaemon, waitFor, type Background,
} from '../fixtures/harness';
import { allStats, dropCount, linkOutside, ping, runContainer, vswStream } from '../fixtures/topology';

const P = runPrefix('rp');
const OUT = `${P}-out`;
const A = `${P}-a`;
const B = `${P}-b`;
const OUTSIDE_IP = '198.51.100.1';
const UPLINK_IP = '198.51.100.2';

if (!isRoot) console.warn(`test/integration/replay.test.ts skipped: ${NEEDS_ROOT}`);

describe.skipIf(!isRoot)('vsw inject, snapshot, capture --all-ports, replay (root)', () => {
  let d: Daemon;
  let tmp = '';
  let gw = '';
  const ip: Record<string, string> = {};
  const servers: Background[] = [];

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${P}-`));
    d = await startDaemon({
      prefix: P, workers: 2,
      setup: async (hostNs) => {
        await linkOutside(hostNs, OUT, OUTSIDE_IP);
        await shOk('ip', ['-n', hostNs, 'link', 'set', 'up0', 'up']);
        await shOk('ip', ['netns', 'exec', OUT, 'ethtool', '-K', 'eth0', 'tx', 'off']);
        fs.writeFileSync(path.join(tmp, 'file.bin'), Buffer.alloc(50_000, 'x'));
        servers.push(background('ip', ['netns', 'exec', OUT, 'python3', '-u', '-m', 'http.server', '80', '--bind', OUTSIDE_IP, '--directory', tmp], 600_000));
      },
      extraArgs: ['--uplink', 'up0', '--uplink-ip', `${UPLINK_IP}/24`, '--uplink-gateway', OUTSIDE_IP],
    });
    gw = (await d.vswJson<NetworkInfo>(['network', 'inspect', 'bridge'])).gateway;
    for (const c of [A, B]) {
      ip[c] = (await runContainer(d, c)).networks[0].ip;
      await shOk('ip', ['netns', 'exec', c, 'ethtool', '-K', 'eth0', 'tx', 'off']);
    }
    servers.push(background('ip', ['netns', 'exec', B, 'iperf3', '-s', '-B', ip[B]], 600_000));
    await waitFor('the servers to listen (outside tcp 80, b tcp 5201)', async () =>
      (await execIn(OUT, 'ss', '-ltnH')).stdout.includes(':80 ') && (await execIn(B, 'ss', '-ltnH')).stdout.includes(':5201 '), { timeoutMs: 15_000 });
  }, 180_000);

  /** The frames of a capture file the CLI is still writing (whole records only: it flushes them every 200 ms). */
  function framesSoFar(file: string): string[] {
    try {
      return readPcap(fs.readFileSync(file)).map((f) => Buffer.from(f.data).toString('hex'));
    } catch {
      return [];
    }
  }

  /**
   * The end of a recorded session: one last ping A -> B with a payload of its own, and a wait
   * until its reply is in A's .out file. The capture drains in time order, so everything
   * before it is in the files too: stopping then cuts nothing off.
   */
  async function markEnd(dir: string): Promise<void> {
    const r = await execInOpts(A, ['ping', '-c', '1', '-W', '2', '-p', 'cafef00d', ip[B]], { timeoutMs: 20_000 });
    expect(r.code, describeResult('ping', r)).toBe(0);
    const portA = (await allStats(d)).find((x) => x.container === A)!.name;
    await waitFor('the last reply in the capture', () => framesSoFar(path.join(dir, `${portA}.out.pcap`)).some((h) => h.includes('cafef00dcafef00d')), { timeoutMs: 10_000, intervalMs: 50 });
  }

  afterAll(async () => {
    for (const s of servers) await s.stop('SIGKILL', 2_000).catch(() => undefined);
    if (d) await d.cleanup();
    else await cleanupPrefix(P);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  it('injects a capture tcpdump made in one container onto its port: the other container sees the frames again', async () => {
    const file = path.join(tmp, 'pings.pcap');
    const rec = background('ip', ['netns', 'exec', A, 'tcpdump', '-i', 'eth0', '-n', '-U', '-c', '4', '-w', file, 'icmp[icmptype] == icmp-echo']);
    await waitFor('tcpdump in a to listen', () => /listening on/.test(rec.stderr()), { timeoutMs: 10_000, intervalMs: 50 });
    const p = await ping(A, ip[B], 4, ['-i', '0.2']);
    expect(p.received, p.out).toBe(4);
    expect((await rec.wait(10_000)).code, rec.stderr()).toBe(0);

    const seen = await capture(B, 'eth0', ['icmp[icmptype] == icmp-echo']);
    const r = await d.vsw(['inject', '--port', A, '--pcap', file, '--rate', '50', '--format', 'json'], { timeoutMs: 30_000 });
    expect(r.code, describeResult('vsw inject', r)).toBe(0);
    const lines = await seen.stop((l) => l.length >= 4);
    expect(lines.filter((l) => l.includes(`${ip[A]} > ${ip[B]}: ICMP echo request`)), lines.join('\n')).toHaveLength(4);
    const s = JSON.parse(r.stdout) as InjectSummary;
    expect(s).toMatchObject({ total: 4, sent: 4, forwarded: 4, local: 0, dropped: {}, filteredOut: 0, stopped: false });

    // Twice over, at top speed, through a filter that keeps them: the text summary.
    const f = await d.vsw(['inject', '--port', `${A}:bridge`, '--pcap', file, '--top-speed', '--loop', '2', '--filter', `icmp-type 8 and dst host ${ip[B]}`], { timeoutMs: 30_000 });
    expect(f.code, describeResult('vsw inject', f)).toBe(0);
    expect(f.stdout).toMatch(/^sent 8 of 8 frames to vsw[0-9a-f]+ in [\d.]+ s\nforwarded 8, taken by the switch 0, dropped 0\n$/);
    // A filter that keeps none: nothing is sent.
    const none = await d.vsw(['inject', '--port', A, '--pcap', file, '--filter', 'arp', '--format', 'json'], { timeoutMs: 30_000 });
    expect(JSON.parse(none.stdout)).toMatchObject({ total: 4, sent: 0, filteredOut: 4, forwarded: 0 });
  }, 90_000);

  it('says what is wrong with a bad file or port, sending nothing', async () => {
    const bad = path.join(tmp, 'bad.pcap');
    fs.writeFileSync(bad, 'not a capture at all, just text');
    const r = await d.vsw(['inject', '--port', A, '--pcap', bad]);
    expect([r.code, r.stderr]).toEqual([1, `vsw: ${bad}: not a pcap file (magic 0x20746f6e)\n`]);
    const n = await d.vsw(['inject', '--port', 'nosuch', '--pcap', bad]);
    expect([n.code, n.stderr]).toEqual([1, "vsw: no port or container named 'nosuch' (see vsw stats, vsw ps)\n"]);
    const u = await d.vsw(['inject', '--port', A, '--pcap', bad, '--rate', '5', '--top-speed']);
    expect(u.code).toBe(2);
  });

  it('replays a recorded session (ARP, ping, TCP, DNS, NAT) to the same frames on every port', async () => {
    const snap = path.join(tmp, 'snap.json');
    const dir = path.join(tmp, 'rec');
    const refused = async (): Promise<Map<string, number>> =>
      new Map((await allStats(d)).map((x) => [x.name, dropCount(x, 'tx-refused') + dropCount(x, 'tx-error')]));
    const refusedBefore = await refused();
    await d.vswOk(['snapshot', '-w', snap]);
    const cap = vswStream(d, ['capture', '--all-ports', '-w', dir]);
    await cap.waitLine(/^vsw: capturing on every port to /);
    // Forget the neighbours so ARP is part of the session.
    for (const c of [A, B]) await execIn(c, 'ip', 'neigh', 'flush', 'all');
    expect((await ping(A, ip[B], 3, ['-i', '0.2'])).received).toBe(3);
    const t = await execInOpts(A, ['iperf3', '-c', ip[B], '-n', '200K', '-b', '50M', '-J'], { timeoutMs: 30_000 });
    expect(t.code, describeResult('iperf3', t)).toBe(0);
    const dns = await execInOpts(A, ['dig', '+short', '+time=2', '+tries=2', `@${gw}`, B], { timeoutMs: 20_000 });
    expect(dns.stdout.trim(), describeResult('dig', dns)).toBe(ip[B]);
    const c = await execInOpts(A, ['curl', '-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{size_download}', `http://${OUTSIDE_IP}/file.bin`], { timeoutMs: 30_000 });
    expect(c.stdout, describeResult('curl', c)).toBe('50000');
    await markEnd(dir);
    const refusedAfter = await refused();
    const stop = await cap.stop('SIGINT', 10_000);
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stderr).toMatch(/vsw: wrote \d+ frames to \d+ files in /);
    expect(stop.stderr).not.toMatch(/lost|skipped/);

    const files = fs.readdirSync(dir);
    const ins = files.filter((f) => f.endsWith('.in.pcap'));
    const outs = files.filter((f) => f.endsWith('.out.pcap'));
    expect(ins.length).toBeGreaterThanOrEqual(3); // a, b, the uplink (and the host TAP when it spoke)
    const out = path.join(tmp, 'replayed');
    const args = ['replay', '--snapshot', snap, ...ins.flatMap((f) => ['--in', `${f.replace(/\.in\.pcap$/, '')}=${path.join(dir, f)}`]), '--out', out, '--format', 'json'];
    // Offline: no socket, no daemon (the CLI is run without one).
    const r = await sh(NODE, [CLI, ...args], { timeoutMs: 60_000 });
    expect(r.code, describeResult('vsw replay', r)).toBe(0);
    const summary = JSON.parse(r.stdout) as ReplaySummary;
    expect(summary.injected).toBe(summary.frames);
    const hex = (file: string): string[] => (fs.existsSync(file) ? readPcap(fs.readFileSync(file)).map((f) => Buffer.from(f.data).toString('hex')) : []);
    let compared = 0;
    for (const f of outs) {
      const port = f.replace(/\.out\.pcap$/, '');
      const live = hex(path.join(dir, f));
      const replayed = hex(path.join(out, `${port}.pcap`));
      // The one thing replay cannot know: a socket that refused frames (full: tx-refused) live.
      // Those are missing from the live side only, and counted.
      const lost = (refusedAfter.get(port) ?? 0) - (refusedBefore.get(port) ?? 0);
      let j = 0;
      const missing: number[] = [];
      for (let i = 0; i < replayed.length; i++) {
        if (j < live.length && replayed[i] === live[j]) j++;
        else missing.push(i);
      }
      expect(j, `${port}: live frame ${j} is not in the replay, in order\nlive ${live[j]}`).toBe(live.length);
      expect(missing.length, `${port}: replay sent ${missing.length} frames more than the live switch, which refused ${lost}`).toBe(lost);
      compared += live.length;
    }
    expect(compared).toBeGreaterThan(150); // ARP, pings, ~150 TCP segments, DNS, NAT'd HTTP
    // ... and a second replay gives the same bytes.
    const again = await sh(NODE, [CLI, ...args.map((a) => (a === out ? `${out}2` : a))], { timeoutMs: 60_000 });
    expect(again.code).toBe(0);
    for (const f of fs.readdirSync(out)) {
      expect(fs.readFileSync(path.join(`${out}2`, f)).equals(fs.readFileSync(path.join(out, f))), f).toBe(true);
    }
  }, 180_000);

  it('keeps an impaired port in the snapshot, and replay delays its frames as the live switch did', async () => {
    await d.vswOk(['impair', 'set', B, '--delay', '40ms', '--seed', '9']);
    try {
      const snap = path.join(tmp, 'snap-impair.json');
      const dir = path.join(tmp, 'rec-impair');
      await d.vswOk(['snapshot', '-w', snap]);
      const s = JSON.parse(fs.readFileSync(snap, 'utf8')) as { impairment: { name: string; out?: { delay: number; seed: number } }[] };
      const portB = (await allStats(d)).find((x) => x.container === B)!.name;
      expect(s.impairment).toEqual([expect.objectContaining({ name: portB, out: expect.objectContaining({ delay: 40, seed: 9 }) })]);
      const cap = vswStream(d, ['capture', '--all-ports', '-w', dir]);
      await cap.waitLine(/^vsw: capturing on every port to /);
      const p = await ping(A, ip[B], 3, ['-i', '0.2']);
      expect(p.received, p.out).toBe(3);
      await markEnd(dir);
      expect((await cap.stop('SIGINT', 10_000)).code).toBe(0);
      const ins = fs.readdirSync(dir).filter((f) => f.endsWith('.in.pcap'));
      const out = path.join(tmp, 'replayed-impair');
      const r = await sh(NODE, [CLI, 'replay', '--snapshot', snap, ...ins.flatMap((f) => ['--in', `${f.replace(/\.in\.pcap$/, '')}=${path.join(dir, f)}`]), '--out', out], { timeoutMs: 60_000 });
      expect(r.code, describeResult('vsw replay', r)).toBe(0);
      const frames = (file: string): { t: number; hex: string }[] => readPcap(fs.readFileSync(file)).map((f) => ({ t: f.time, hex: Buffer.from(f.data).toString('hex') }));
      const live = frames(path.join(dir, `${portB}.out.pcap`)).filter((f) => f.hex.slice(24, 28) === '0800');
      const replayed = frames(path.join(out, `${portB}.pcap`)).filter((f) => f.hex.slice(24, 28) === '0800');
      // The same echo requests (3, and the end mark), each sent 40 ms (and a little more live) after A's port received it.
      expect(replayed).toHaveLength(4);
      expect(replayed.map((f) => f.hex)).toEqual(live.map((f) => f.hex));
      const sentByA = frames(path.join(dir, `${(await allStats(d)).find((x) => x.container === A)!.name}.in.pcap`)).filter((f) => f.hex.slice(24, 28) === '0800');
      for (const f of replayed) {
        const cause = sentByA.find((x) => x.hex.slice(28) === f.hex.slice(28))!;
        expect(Math.round((f.t - cause.t) * 1000), 'replayed delay (ms)').toBe(40);
      }
    } finally {
      await d.vswOk(['impair', 'rm', B]);
    }
  }, 90_000);
});
