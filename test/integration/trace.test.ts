// End to end: `vsw trace --dry-run` against a real daemon: a frame given as hex, by port or
// container name, and every frame of a pcap that tcpdump captured in a container. The trace
// names the stages and the egress port; a dry run changes nothing (the MAC table is as it
// was); bad input is a clear error.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EndpointInfo, FdbEntryInfo, TraceResult } from '../../control/types';
import { capture, cleanupPrefix, Daemon, execInOpts, isRoot, NEEDS_ROOT, runPrefix, startDaemon } from '../fixtures/harness';
import { icmpEcho } from '../fixtures/frames';

const P = runPrefix('t');
const C1 = `${P}-c1`;
const C2 = `${P}-c2`;
// Frames are replayed on the other container's port: on a network with port security they
// would end at ingress (spoofed-source, test/integration/guard.test.ts), so these containers
// live on a network without it.
const NET = `${P}-open`;

if (!isRoot) console.warn(`test/integration/trace.test.ts skipped: ${NEEDS_ROOT}`);

describe.skipIf(!isRoot)('vsw trace --dry-run (root)', () => {
  let d: Daemon;
  const ep: Record<string, { ip: string; mac: string; hostIf: string }> = {};
  let tmp = '';

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${P}-`));
    d = await startDaemon({ prefix: P, workers: 2 });
    await d.vswOk(['network', 'create', '--port-security', 'off', NET]);
    for (const c of [C1, C2]) await d.vswOk(['run', '-d', '--name', c, '--network', NET, '--', 'sleep', '600']);
    const net = await d.vswJson<{ endpoints: EndpointInfo[] }>(['network', 'inspect', NET]);
    Object.assign(ep, Object.fromEntries(net.endpoints.map((e) => [e.container, e])));
    const r = await execInOpts(C1, ['ping', '-c', '2', '-i', '0.2', '-W', '2', ep[C2].ip], { timeoutMs: 20_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
  }, 120_000);

  afterAll(async () => {
    if (d) await d.cleanup();
    else await cleanupPrefix(P);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  const frame = (): string => Buffer.from(icmpEcho({
    srcMac: ep[C1].mac, dstMac: ep[C2].mac, srcIp: ep[C1].ip, dstIp: ep[C2].ip, id: 9, seq: 3,
  })).toString('hex');

  it('a frame from c1 to c2, named by container: each stage, and c2\'s port as the egress', async () => {
    const r = await d.vswOk(['trace', '--dry-run', '--port', C1, '--frame', frame()]);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe(`frame   ${ep[C1].mac} > ${ep[C2].mac}, IPv4 ${ep[C1].ip} > ${ep[C2].ip} ICMP echo request id 9 seq 3`);
    expect(lines.map((l) => l.split(/\s+/)[0])).toEqual(['frame', 'parse', 'ingress', 'learn', 'gateway', 'forward']);
    expect(lines[2]).toContain(`port ${ep[C1].hostIf} (${C1}): network ${NET}`);
    expect(lines[4]).toBe('gateway  pass (not for the gateway)');
    expect(lines[5]).toBe(`forward  known unicast ${ep[C2].mac} -> ${ep[C2].hostIf} (${C2})`);
    // The same by port name, as JSON.
    const [j] = await d.vswJson<TraceResult[]>(['trace', '--dry-run', '--port', ep[C1].hostIf, '--frame', frame(), '--format', 'json']);
    expect(j.verdict).toEqual({ kind: 'unicast', ports: [`${ep[C2].hostIf} (${C2})`] });
  });

  it('changes nothing: c1\'s frame replayed on c2\'s port would move c1\'s MAC, but it stays', async () => {
    const r = await d.vswOk(['trace', '--dry-run', '--port', C2, '--frame', frame()]);
    expect(r.stdout).toContain(`(dry run, not learned) move: ${ep[C1].mac} from ${ep[C1].hostIf} (${C1}) to ${ep[C2].hostIf} (${C2})`);
    expect(r.stdout).toContain('forward  drop: reflected');
    const fdb = await d.vswJson<FdbEntryInfo[]>(['fdb', '--format', 'json']);
    expect(fdb.find((e) => e.mac === ep[C1].mac)?.port).toBe(ep[C1].hostIf);
  });

  /** ICMP echo frames (98 bytes, each behind a 16-byte record header) in a pcap tcpdump is writing. */
  const icmpFrames = (file: string): number => Math.floor(Math.max(0, (fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0) - 24) / (16 + 98));

  it('traces every frame of a pcap captured with tcpdump', async () => {
    const file = path.join(tmp, 'ping.pcap');
    const cap = await capture(C2, 'eth0', ['-w', file, 'icmp']);
    await execInOpts(C1, ['ping', '-c', '1', '-W', '2', ep[C2].ip], { timeoutMs: 20_000 });
    // With -w, tcpdump writes each frame to the file as it comes (-U): stop once both are there.
    await cap.stop(() => icmpFrames(file) >= 2);
    const res = await d.vswJson<TraceResult[]>(['trace', '--dry-run', '--port', C1, '--pcap', file, '--format', 'json']);
    expect(res.length).toBe(2);                      // the request and the reply
    expect(res[0].frame).toMatch(/ICMP echo request/);
    expect(res[0].verdict.ports).toEqual([`${ep[C2].hostIf} (${C2})`]);
    expect(res[1].frame).toMatch(/ICMP echo reply/);
    expect(res[1].verdict).toEqual({ kind: 'drop', ports: [], reason: 'reflected' }); // c1's MAC is behind c1's port
  });

  it('bad input: no --dry-run (2), unknown port (1), bad hex (1), not a pcap (1)', async () => {
    expect((await d.vsw(['trace', '--port', C1, '--frame', frame()])).code).toBe(2);
    const unknown = await d.vsw(['trace', '--dry-run', '--port', 'nosuch', '--frame', frame()]);
    expect([unknown.code, unknown.stderr]).toEqual([1, "vsw: no port or container named 'nosuch' (see vsw stats, vsw ps)\n"]);
    expect((await d.vsw(['trace', '--dry-run', '--port', C1, '--frame', 'xyz'])).stderr).toMatch(/hex digits/);
    const notPcap = path.join(tmp, 'x.pcap');
    fs.writeFileSync(notPcap, 'hello, not a capture file');
    const r = await d.vsw(['trace', '--dry-run', '--port', C1, '--pcap', notPcap]);
    expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(/not a pcap file/)]);
  });
});
