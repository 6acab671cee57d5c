// End to end: the embedded DNS forwards out of the uplink (issue 11, defect 6). The daemon's
// namespace has the uplink device but no address on it and no route to the resolver: only
// the switch (its uplink address) can reach the outside, as a container does through
// masquerade. The resolver is behind the uplink gateway (an "outside" namespace, the
// resolver's address on its loopback), so the query's next hop is the gateway. A container's
// dig @GATEWAY gets the outside server's answer, and the server sees the query come from the
// uplink address and a port of the forwarder's range; a first resolver with nothing listening
// is skipped at once (its ICMP port unreachable comes back through the switch too). All traffic stays in the namespaces
// this file creates (TEST-NET-2 198.51.100.0/24 on the uplink, 192.0.2.53 the resolver).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NetworkInfo } from '../../control/types';
import {
  background, cleanupPrefix, CLI, Daemon, describeResult, execIn, execInOpts, isRoot, NEEDS_ROOT,
  NODE, runPrefix, shOk, startDaemon, waitFor, type Background,
} from '../fixtures/harness';
import { linkOutside, runContainer } from '../fixtures/topology';
import { udpFrame } from '../fixtures/frames';
import { CT_FORWARDER_PORT_MAX, CT_FORWARDER_PORT_MIN } from '../../dataplane/tables/conntrack';

const P = runPrefix('u');
const OUT = `${P}-out`;
const C1 = `${P}-c1`;

const OUTSIDE_IP = '198.51.100.1'; // the uplink gateway
const UPLINK_IP = '198.51.100.2';
const RESOLVER = '192.0.2.53';     // behind the gateway
const ANSWER = '203.0.113.9';
const METRICS = '127.0.0.1:9465';

// A tiny resolver bound to its own address (so that its answers come from it): any A query
// gets ANSWER; a name starting with "wrongid." first gets an answer with a wrong ID (the
// forwarder must drop it and keep waiting). Prints one line per query.
const RESOLVER_PY = `
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('${RESOLVER}', 53))
print('listening', flush=True)
while True:
    data, addr = s.recvfrom(4096)
    if len(data) < 12:
        continue
    qid, flags = struct.unpack('!HH', data[:4])
    pos, labels = 12, []
    while pos < len(data) and data[pos] != 0:
        labels.append(data[pos + 1:pos + 1 + data[pos]].decode('ascii', 'replace'))
        pos += 1 + data[pos]
    name = '.'.join(labels).lower()
    question = data[12:pos + 5]
    print(f'query from {addr[0]}:{addr[1]} {name}', flush=True)
    answer = b'\\xc0\\x0c' + struct.pack('!HHIH', 1, 1, 60, 4) + socket.inet_aton('${ANSWER}')
    reply = lambda i: struct.pack('!HHHHHH', i, 0x8180 | (flags & 0x0100), 1, 1, 0, 0) + question + answer
    if name.startswith('wrongid.'):
        s.sendto(reply(qid ^ 0x5555), addr)
    s.sendto(reply(qid), addr)
`;

if (!isRoot) console.warn(`test/integration/dns-uplink.test.ts skipped: ${NEEDS_ROOT}`);

describe.skipIf(!isRoot)('DNS forwarding out of the uplink (root)', () => {
  let d: Daemon;
  let gw = '';
  let resolver: Background;

  async function dig(...args: string[]): Promise<{ answers: string[]; out: string }> {
    const r = await execInOpts(C1, ['dig', '+time=3', '+tries=1', `@${gw}`, ...args], { timeoutMs: 30_000 });
    const answers = r.stdout.split('\n').filter((l) => /\sIN\s+A\s/.test(l) && !l.startsWith(';')).map((l) => l.trim().split(/\s+/).pop()!);
    return { answers, out: describeResult(`dig ${args.join(' ')}`, r) };
  }

  async function metric(series: string): Promise<number> {
    const r = await execInOpts(d.hostNs, ['curl', '-sS', '--max-time', '5', `http://${METRICS}/metrics`], { timeoutMs: 15_000 });
    expect(r.code, describeResult('curl metrics', r)).toBe(0);
    const line = r.stdout.split('\n').find((l) => l.startsWith(`${series} `));
    return line ? Number(line.split(' ')[1]) : NaN;
  }

  beforeAll(async () => {
    d = await startDaemon({
      prefix: P, workers: 2,
      setup: async (hostNs) => {
        await linkOutside(hostNs, OUT, OUTSIDE_IP);
        await shOk('ip', ['-n', OUT, 'link', 'set', 'lo', 'up']);
        await shOk('ip', ['-n', OUT, 'addr', 'add', `${RESOLVER}/32`, 'dev', 'lo']);
        // The daemon's side: the device only; no address, no route (lo for the metrics).
        await shOk('ip', ['-n', hostNs, 'link', 'set', 'lo', 'up']);
        resolver = background('ip', ['netns', 'exec', OUT, 'python3', '-u', '-c', RESOLVER_PY], 600_000);
      },
      // The first resolver has nothing listening (port unreachable): each query moves on to
      // the second at once, not after the 2 s try timeout.
      extraArgs: ['--uplink', 'up0', '--uplink-ip', `${UPLINK_IP}/24`, '--uplink-gateway', OUTSIDE_IP, '--dns', `${RESOLVER}:5353`, '--dns', RESOLVER,
        '--metrics', METRICS],
    });
    await waitFor('the resolver to listen', () => resolver.stdout().includes('listening') || (resolver.exited() && Promise.reject(new Error(resolver.stderr()))), { timeoutMs: 15_000 });
    const net = await d.vswJson<NetworkInfo>(['network', 'inspect', 'bridge']);
    gw = net.gateway;
    await runContainer(d, C1);
  }, 180_000);

  afterAll(async () => {
    if (resolver) await resolver.stop('SIGKILL', 2_000).catch(() => undefined);
    if (d) await d.cleanup();
    else await cleanupPrefix(P);
  }, 60_000);

  it('the daemon itself has no way to the resolver (the premise)', async () => {
    const addrs = await execIn(d.hostNs, 'ip', '-4', '-o', 'addr', 'show', 'dev', 'up0');
    expect(addrs.stdout.trim()).toBe('');
    const route = await execIn(d.hostNs, 'ip', 'route', 'get', RESOLVER);
    expect(route.code, route.stdout + route.stderr).not.toBe(0);
  });

  it("a container's query for an outside name is answered by the resolver behind the uplink, asked from the uplink address", async () => {
    const r = await dig('outside.example');
    expect(r.answers, r.out).toEqual([ANSWER]);
    const line = resolver.stdout().split('\n').find((l) => l.endsWith(' outside.example'));
    expect(line, resolver.stdout()).toBeDefined();
    const m = /^query from ([0-9.]+):(\d+) /.exec(line!);
    expect(m?.[1]).toBe(UPLINK_IP);
    const port = Number(m?.[2]);
    expect(port).toBeGreaterThanOrEqual(CT_FORWARDER_PORT_MIN);
    expect(port).toBeLessThanOrEqual(CT_FORWARDER_PORT_MAX);
    // The dead first resolver's port unreachable came back through the switch and ended that
    // try at once (the try timeout is 2 s).
    expect(Number(/Query time: (\d+) msec/.exec(r.out)?.[1]), r.out).toBeLessThan(1500);
    expect(await metric('vsw_dns_upstream_total{path="uplink",event="refused"}')).toBeGreaterThanOrEqual(1);
    // The next hop was the uplink gateway, resolved by ARP.
    const neigh = await d.vswJson<{ ip: string; state: string }[]>(['neigh', 'uplink', '--format', 'json']);
    expect(neigh.find((e) => e.ip === OUTSIDE_IP)?.state, JSON.stringify(neigh)).toMatch(/reachable|stale/);
  });

  it('over TCP too (the TCP listener forwards over UDP out of the uplink)', async () => {
    const r = await dig('+tcp', 'tcp.outside.example');
    expect(r.answers, r.out).toEqual([ANSWER]);
    expect(resolver.stdout()).toContain(`query from ${UPLINK_IP}:`);
  });

  it('an answer with the wrong ID is dropped and counted; the right one still gets through', async () => {
    const before = await metric('vsw_dns_upstream_total{path="uplink",event="unmatched"}');
    const r = await dig('wrongid.outside.example');
    expect(r.answers, r.out).toEqual([ANSWER]);
    expect(await metric('vsw_dns_upstream_total{path="uplink",event="unmatched"}')).toBe(before + 1);
    expect(await metric('vsw_dns_upstream_total{path="uplink",event="sent"}')).toBeGreaterThanOrEqual(6);
    expect(await metric('vsw_dns_upstream_total{path="uplink",event="matched"}')).toBeGreaterThanOrEqual(3);
    expect(await metric('vsw_dns_upstream_total{path="host",event="sent"}')).toBe(0);
    expect(await metric('vsw_dns_queries_total{result="servfail"}')).toBe(0);
  });

  it('vsw trace names the answer punted to the forwarder; to a port no try waits on, it is dropped in the worker', async () => {
    const tr = background(NODE, [CLI, '--socket', d.sock, 'trace', '--port', 'up0', '--filter', `udp and src host ${RESOLVER}`, '--count', '1'], 60_000);
    await waitFor('the trace to start', () => tr.stderr().includes('tracing'), { timeoutMs: 10_000 });
    const r = await dig('traced.outside.example');
    expect(r.answers, r.out).toEqual([ANSWER]);
    expect((await tr.wait(10_000)).code, tr.stderr()).toBe(0);
    expect(tr.stdout()).toMatch(new RegExp(`gateway +dns-upstream-answer: ${RESOLVER.replace(/\./g, '\\.')}:53 > ${UPLINK_IP.replace(/\./g, '\\.')}:6\\d{4} to the DNS forwarder \\(main thread\\)`));
    // A dry run of an answer to an idle port of the range: dropped, no-service.
    const mac = (await execIn(d.hostNs, 'cat', '/sys/class/net/up0/address')).stdout.trim();
    const frame = Buffer.from(udpFrame({
      srcMac: '02:00:00:00:00:01', dstMac: mac, srcIp: RESOLVER, dstIp: UPLINK_IP, srcPort: 53, dstPort: CT_FORWARDER_PORT_MIN + 7,
      payload: new Uint8Array(12),
    })).toString('hex');
    const dry = await d.vswOk(['trace', '--dry-run', '--port', 'up0', '--frame', frame]);
    expect(dry.stdout).toContain('no-service');
  });

  it('-p refuses a UDP port of the forwarder range on the uplink address', async () => {
    const r = await d.vsw(['run', '-d', '--name', `${P}-pub`, '-p', `${CT_FORWARDER_PORT_MIN + 1}:53/udp`, '--', 'sleep', '60']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("DNS forwarder's");
  });
});
