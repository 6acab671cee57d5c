// End to end: the switch's router (issue #3). One daemon in a throwaway host namespace with
// an uplink (a veth to an "outside" namespace that holds a web server, an iperf3 server, a
// UDP echo server and an upstream DNS server); containers on the default network reach the
// outside through masquerade, serve it through published ports, and resolve each other by
// name and alias through the embedded DNS on the gateway. All traffic stays inside the
// namespaces this file creates (TEST-NET-2 198.51.100.0/24 outside; 10.89.x inside).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ConntrackEntryInfo, ContainerInfo, NeighEntryInfo, NetworkInfo, PortStatsInfo } from '../../control/types';
import {
  background, cleanupPrefix, Daemon, describeResult, execIn, execInOpts, isRoot, NEEDS_ROOT,
  CLI, NODE, ROOT, runPrefix, shOk, startDaemon, waitFor, type Background,
} from '../fixtures/harness';
import { eventsStream, linkOutside, ping, runContainer } from '../fixtures/topology';

const P = runPrefix('l');
const OUT = `${P}-out`;
const W1 = `${P}-w1`;
const W2 = `${P}-w2`;
const C3 = `${P}-c3`;
const WEB = `${P}-web`;
const INT = `${P}-int`;
const IN1 = `${P}-i1`;
const NOICC = `${P}-noicc`;
const Q1 = `${P}-q1`;
const Q2 = `${P}-q2`;
const LNK = `${P}-lnk`;

const OUTSIDE_IP = '198.51.100.1';
const UPLINK_IP = '198.51.100.2';
const HOST_UPLINK_IP = '198.51.100.3';
const OUTSIDE_PY = path.join(ROOT, 'test', 'fixtures', 'outside.py');

if (!isRoot) console.warn(`test/integration/l3.test.ts skipped: ${NEEDS_ROOT}`);

describe.skipIf(!isRoot)('router: gateway, NAT, published ports, DNS (root)', () => {
  let d: Daemon;
  let gw = '';
  let net: NetworkInfo;
  const servers: Record<string, Background> = {};
  const ipOf: Record<string, string> = {};

  async function curl(ns: string, url: string, timeoutS = 5): Promise<{ code: number | null; body: string; out: string }> {
    const r = await execInOpts(ns, ['curl', '-sS', '--max-time', String(timeoutS), '--retry', '2', '--retry-connrefused', url], { timeoutMs: 40_000 });
    return { code: r.code, body: r.stdout, out: describeResult(`${ns}: curl ${url}`, r) };
  }

  async function dig(ns: string, ...args: string[]): Promise<string[]> {
    const r = await execInOpts(ns, ['dig', '+short', '+time=2', '+tries=2', ...args], { timeoutMs: 30_000 });
    return r.stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith(';'));
  }

  /** Start a container and remember its address (first network) in ipOf. */
  async function run(name: string, args: string[], cmd?: string[]): Promise<ContainerInfo> {
    const c = await runContainer(d, name, { args, cmd });
    ipOf[name] = c.networks[0]?.ip ?? '';
    return c;
  }

  beforeAll(async () => {
    d = await startDaemon({
      prefix: P, workers: 2,
      setup: async (hostNs) => {
        await linkOutside(hostNs, OUT, OUTSIDE_IP);
        // The host's own address on the shared link: the daemon's upstream DNS traffic uses it.
        await shOk('ip', ['-n', hostNs, 'addr', 'add', `${HOST_UPLINK_IP}/24`, 'dev', 'up0']);
        await shOk('ip', ['-n', hostNs, 'link', 'set', 'up0', 'up']);
        servers.web = background('ip', ['netns', 'exec', OUT, 'python3', '-u', '-m', 'http.server', '80', '--bind', OUTSIDE_IP], 600_000);
        servers.iperf = background('ip', ['netns', 'exec', OUT, 'iperf3', '-s', '-B', OUTSIDE_IP], 600_000);
        servers.dns = background('ip', ['netns', 'exec', OUT, 'python3', '-u', OUTSIDE_PY, 'dns', '53'], 600_000);
        servers.echo = background('ip', ['netns', 'exec', OUT, 'python3', '-u', OUTSIDE_PY, 'udpecho', '9999'], 600_000);
      },
      extraArgs: ['--uplink', 'up0', '--uplink-ip', `${UPLINK_IP}/24`, '--uplink-gateway', OUTSIDE_IP, '--dns', OUTSIDE_IP,
        '--metrics', '127.0.0.1:9464'],
    });
    // The outside's servers listen before any test talks to them.
    await waitFor('the outside servers to listen (tcp 80, 5201; udp 53, 9999)', async () => {
      const tcp = (await execIn(OUT, 'ss', '-ltnH')).stdout;
      const udp = (await execIn(OUT, 'ss', '-lunH')).stdout;
      return [':80 ', ':5201 '].every((p) => tcp.includes(p)) && [':53 ', ':9999 '].every((p) => udp.includes(p));
    }, { timeoutMs: 15_000 });
    net = await d.vswJson<NetworkInfo>(['network', 'inspect', 'bridge']);
    gw = net.gateway;
    await run(W1, ['--alias', 'web']);
    await run(W2, ['--alias', 'web']);
    await run(C3, []);
    await run(WEB, ['-p', '8080:80', '-p', '5353:9999/udp'], ['sh', '-c',
      `python3 -u -m http.server 80 & exec python3 -u ${OUTSIDE_PY} udpecho 9999`]);
    await waitFor('the web container to listen', async () => (await execIn(WEB, 'ss', '-ltn')).stdout.includes(':80 '), { timeoutMs: 15_000 });
  }, 180_000);

  afterAll(async () => {
    for (const s of Object.values(servers)) await s.stop('SIGKILL', 2_000).catch(() => undefined);
    if (d) await d.cleanup();
    else await cleanupPrefix(P);
  }, 60_000);

  // ---------------------------------------------------------------- the gateway

  it('containers ping the gateway, and arping shows the gateway MAC', async () => {
    const r = await ping(C3, gw, 3);
    expect(r.received, r.out).toBe(3);
    const a = await execInOpts(C3, ['arping', '-c', '2', '-w', '5', '-I', 'eth0', gw], { timeoutMs: 20_000 });
    expect(a.stdout.toLowerCase(), describeResult('arping', a)).toContain(net.gatewayMac.toLowerCase());
  });

  it("the gateway's neighbour table learns the containers; their ARP tables learn peers", async () => {
    await ping(W1, ipOf[W2], 1);
    const n = await d.vswJson<NeighEntryInfo[]>(['neigh', 'bridge', '--format', 'json']);
    const c3 = n.find((e) => e.ip === ipOf[C3]);
    expect(c3, JSON.stringify(n)).toBeDefined();
    expect(c3!.state).toBe('reachable');
    const arp = await execIn(W1, 'ip', 'neigh', 'show', ipOf[W2]);
    expect(arp.stdout).toMatch(/lladdr 02:42:/);
  });

  // ---------------------------------------------------------------- masquerade

  it('curl from a container to the outside works, and the server sees the uplink address', async () => {
    const r = await curl(C3, `http://${OUTSIDE_IP}/`);
    expect(r.code, r.out).toBe(0);
    expect(r.body).toContain('Directory listing');
    await waitFor('the access log', () => servers.web.stderr().includes('GET / '), { timeoutMs: 5_000 });
    const lines = servers.web.stderr().split('\n').filter((l) => l.includes('"GET / '));
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l.startsWith(`${UPLINK_IP} `), l).toBe(true);
  });

  it('ICMP echo and a UDP flow through the NAT work; conntrack lists them', async () => {
    const p = await ping(C3, OUTSIDE_IP, 3);
    expect(p.received, p.out).toBe(3);
    const u = await execInOpts(C3, ['python3', '-c', [
      'import socket', 's=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)', 's.settimeout(3)',
      `s.sendto(b'hello', ('${OUTSIDE_IP}', 9999))`, 'print(s.recvfrom(100)[0].decode())',
    ].join('\n')], { timeoutMs: 20_000 });
    expect(u.stdout, describeResult('udp', u)).toContain(`from ${UPLINK_IP}:`);
    expect(u.stdout).toContain('hello');
    const ct = await d.vswJson<ConntrackEntryInfo[]>(['conntrack', '--format', 'json']);
    const udp = ct.find((e) => e.proto === 'udp' && e.orig.src === ipOf[C3] && e.orig.dport === 9999);
    expect(udp, JSON.stringify(ct, null, 1)).toBeDefined();
    expect(udp!.reply.dst).toBe(UPLINK_IP);
    expect(udp!.state).toBe('REPLIED');
    expect(udp!.kind).toBe('masquerade');
    const icmp = ct.find((e) => e.proto === 'icmp' && e.orig.src === ipOf[C3]);
    expect(icmp).toBeDefined();
    const text = await d.vswOk(['conntrack']);
    expect(text.stdout).toContain(`${ipOf[C3]}`);
  });

  it('an ICMP port unreachable from outside reaches the right container', async () => {
    const r = await execInOpts(C3, ['python3', '-c', [
      'import socket', 's=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)', 's.settimeout(3)',
      `s.connect(('${OUTSIDE_IP}', 9))`, "s.send(b'x')",
      'try:\n  s.recv(10)\n  print("answer")\nexcept ConnectionRefusedError:\n  print("refused")\nexcept socket.timeout:\n  print("timeout")',
    ].join('\n')], { timeoutMs: 20_000 });
    expect(r.stdout.trim(), describeResult('udp to a closed port', r)).toBe('refused');
  });

  it('vsw events reports new connections (conntrack-new)', async () => {
    const ev = await eventsStream(d, `${P}-probe`);
    const r = await curl(C3, `http://${OUTSIDE_IP}/`);
    expect(r.code, r.out).toBe(0);
    // Wait for this very connection's event (an earlier flow's may arrive first).
    await waitFor('the curl connection\'s conntrack-new event',
      () => ev.stdout().split('\n').some((l) => l.includes('conntrack-new') && l.includes(`> ${OUTSIDE_IP}:80"`)), { timeoutMs: 5_000 });
    const out = await ev.stop('SIGINT');
    const events = out.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>);
    const mine = events.find((e) => e.type === 'conntrack-new' && e.orig.startsWith(`${ipOf[C3]}:`) && e.orig.endsWith(`> ${OUTSIDE_IP}:80`));
    expect(mine, out.stdout).toBeDefined();
    expect(mine!.kind).toBe('masquerade');
    expect(mine!.reply).toMatch(new RegExp(`> ${UPLINK_IP.replace(/\./g, '\\.')}:\\d+$`));
  });

  it('vsw capture --stage pre-nat / post-nat: tshark shows the addresses before and after translation', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${P}-cap-`));
    try {
      const start = (stage: string): Background => background(NODE, [CLI, '--socket', d.sock, 'capture', '--port', C3,
        '--stage', stage, '--filter', `icmp and host ${OUTSIDE_IP}`, '-c', '2', '-w', path.join(dir, `${stage}.pcap`)], 60_000);
      const pre = start('pre-nat');
      const post = start('post-nat');
      await waitFor('both captures to start', () => pre.stderr().includes('capturing') && post.stderr().includes('capturing'), { timeoutMs: 10_000 });
      const p = await ping(C3, OUTSIDE_IP, 2);
      expect(p.received, p.out).toBe(2);
      for (const c of [pre, post]) expect((await c.wait(10_000)).code, c.stderr()).toBe(0);
      const fields = async (stage: string): Promise<string[]> => {
        const r = await execInOpts(d.hostNs, ['tshark', '-r', path.join(dir, `${stage}.pcap`), '-T', 'fields', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'icmp.type'], { timeoutMs: 30_000 });
        expect(r.code, describeResult('tshark', r)).toBe(0);
        return r.stdout.trim().split('\n');
      };
      expect(await fields('pre-nat')).toEqual([`${ipOf[C3]}\t${OUTSIDE_IP}\t8`, `${ipOf[C3]}\t${OUTSIDE_IP}\t8`]);
      expect(await fields('post-nat')).toEqual([`${UPLINK_IP}\t${OUTSIDE_IP}\t8`, `${UPLINK_IP}\t${OUTSIDE_IP}\t8`]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('vsw trace (live) prints the path of matching frames through every stage and stops after --count', async () => {
    const tr = background(NODE, [CLI, '--socket', d.sock, 'trace', '--port', C3, '--filter', `icmp and dst host ${OUTSIDE_IP}`, '--count', '2'], 60_000);
    await waitFor('the trace to start', () => tr.stderr().includes('tracing'), { timeoutMs: 10_000 });
    await ping(C3, OUTSIDE_IP, 3);
    const done = await tr.wait(10_000);
    expect(done.code, tr.stderr()).toBe(0);
    const out = tr.stdout();
    expect(out.match(/^frame /gm)).toHaveLength(2);
    // The router gives the verdict (out of the uplink): no forward line.
    for (const stage of ['parse', 'ingress', 'learn', 'gateway']) expect(out).toMatch(new RegExp(`^${stage} `, 'm'));
    expect(out).not.toMatch(/^forward /m);
    expect(out).toMatch(new RegExp(`gateway +conntrack(-new)?: ${ipOf[C3].replace(/\./g, '\\.')} > ${OUTSIDE_IP.replace(/\./g, '\\.')} .*=> ${UPLINK_IP.replace(/\./g, '\\.')} > `));
    expect(out).toContain('-> up0');
    // JSON: one object per frame.
    const js = background(NODE, [CLI, '--socket', d.sock, 'trace', '--net', 'bridge', '--filter', 'icmp', '--count', '1', '--format', 'json'], 60_000);
    await waitFor('the trace to start', () => js.stderr().includes('tracing'), { timeoutMs: 10_000 });
    await ping(C3, gw, 1);
    expect((await js.wait(10_000)).code, js.stderr()).toBe(0);
    const r = JSON.parse(js.stdout().trim()) as { steps: { stage: string; text: string }[]; verdict: { kind: string } };
    expect(r.steps.find((s) => s.stage === 'gateway')?.text).toMatch(/^ping: /);
  });

  it('iperf3 TCP through the NAT completes', async () => {
    const r = await execInOpts(C3, ['iperf3', '-c', OUTSIDE_IP, '-t', '2', '-J'], { timeoutMs: 30_000 });
    expect(r.code, describeResult('iperf3', r)).toBe(0);
    const j = JSON.parse(r.stdout) as { end: { sum_received: { bytes: number } } };
    expect(j.end.sum_received.bytes).toBeGreaterThan(1_000_000);
  });

  // ---------------------------------------------------------------- published ports

  it('-p 8080:80: reachable from outside at the uplink address, from the host via the gateway, and from another container (hairpin)', async () => {
    const outside = await curl(OUT, `http://${UPLINK_IP}:8080/`);
    expect(outside.code, outside.out).toBe(0);
    expect(outside.body).toContain('Directory listing');
    const host = await curl(d.hostNs, `http://${gw}:8080/`);
    expect(host.code, host.out).toBe(0);
    const hairpin = await curl(C3, `http://${UPLINK_IP}:8080/`);
    expect(hairpin.code, hairpin.out).toBe(0);
    const ps = await d.vswOk(['ps']);
    expect(ps.stdout).toContain('8080->80/tcp');
    const port = await d.vswOk(['port', WEB]);
    expect(port.stdout).toContain('80/tcp');
    expect(port.stdout).toContain('8080');
  });

  it('-p 5353:9999/udp: a UDP mapping works from outside', async () => {
    const u = await execInOpts(OUT, ['python3', '-c', [
      'import socket', 's=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)', 's.settimeout(3)',
      `s.sendto(b'ping', ('${UPLINK_IP}', 5353))`, 'print(s.recvfrom(100)[0].decode())',
    ].join('\n')], { timeoutMs: 20_000 });
    // The container sees the real client (DNAT only, like Docker).
    expect(u.stdout, describeResult('udp to the published port', u)).toContain(`from ${OUTSIDE_IP}:`);
  });

  it('an unpublished port is not reachable from outside', async () => {
    const r = await execInOpts(OUT, ['curl', '-sS', '--max-time', '2', `http://${UPLINK_IP}:8081/`], { timeoutMs: 10_000 });
    expect(r.code).not.toBe(0);
    const st = await d.vswJson<PortStatsInfo[]>(['stats', '--format', 'json']);
    const up = st.find((s) => s.name === 'up0');
    expect(up?.drops['no-service'] ?? 0).toBeGreaterThan(0);
  });

  // ---------------------------------------------------------------- DNS

  it('dig +short web returns both aliased containers, each first in turn', async () => {
    const firsts = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const a = await dig(C3, 'web');
      firsts.add(a[0]);
      expect([...a].sort()).toEqual([ipOf[W1], ipOf[W2]].sort());
    }
    expect(firsts).toEqual(new Set([ipOf[W1], ipOf[W2]]));
  });

  it('names resolve: ping -c1 web, getent hosts NAME.NETWORK, case-insensitive names, PTR, TCP', async () => {
    const p = await ping(C3, 'web', 1);
    expect(p.received, p.out).toBe(1);
    const g = await execIn(C3, 'getent', 'hosts', `${W1}.bridge`);
    expect(g.stdout, describeResult('getent', g)).toContain(ipOf[W1]);
    expect(await dig(C3, W1.toUpperCase())).toEqual([ipOf[W1]]);
    const ptr = await dig(C3, '-x', ipOf[W1]);
    expect(ptr[0]).toMatch(new RegExp(`^${W1}\\.bridge\\.?$`));
    expect(await dig(C3, '+tcp', W2)).toEqual([ipOf[W2]]);
    const aaaa = await execInOpts(C3, ['dig', '+time=2', '+tries=1', W1, 'AAAA'], { timeoutMs: 20_000 });
    expect(aaaa.stdout).toContain('status: NOERROR');
    expect(aaaa.stdout).toMatch(/ANSWER: 0/);
  });

  it('unknown names are forwarded to the upstream resolver outside', async () => {
    expect(await dig(C3, 'www.example.test')).toEqual(['203.0.113.7']);
    expect(servers.dns.stdout()).toContain('www.example.test');
    const nx = await execInOpts(C3, ['dig', '+time=2', '+tries=1', 'nothing.invalid'], { timeoutMs: 20_000 });
    expect(nx.stdout).toContain('status: NXDOMAIN');
  });

  it('hostile DNS queries get FORMERR or are dropped, and the server keeps answering', async () => {
    const junk = [
      '', '00', 'ffffffffffffffffffffffff',                                   // short, absurd counts
      '1234010000010000000000000377777777c00c00010001',                      // bad label
      '12340100000100000000000003777777c00c0001',                             // truncated
      '1234010000010000000000000377777777c00c',                               // pointer loop-ish
      '12340100ffff00000000000001610000010001',                               // qdcount 65535
    ];
    const script = [
      'import socket, binascii', 's=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)', 's.settimeout(1)',
      `for h in ${JSON.stringify(junk)}:`,
      `  s.sendto(binascii.unhexlify(h), ('${gw}', 53))`,
      '  try:\n    d=s.recv(1000); print(h[:8], "rcode", d[3] & 15)\n  except socket.timeout:\n    print(h[:8], "dropped")',
      `s.sendto(b'x'*4000, ('${gw}', 53))`,
    ].join('\n');
    const r = await execInOpts(C3, ['python3', '-c', script], { timeoutMs: 30_000 });
    expect(r.code, describeResult('junk', r)).toBe(0);
    for (const l of r.stdout.trim().split('\n')) expect(l).toMatch(/rcode 1|dropped/);
    expect(await dig(C3, W1)).toEqual([ipOf[W1]]);
    expect(d.running()).toBe(true);
  });

  it('metrics count DNS queries by result, neighbours and connections', async () => {
    const r = await execInOpts(d.hostNs, ['curl', '-sS', '--max-time', '5', 'http://127.0.0.1:9464/metrics'], { timeoutMs: 15_000 });
    expect(r.code, describeResult('curl metrics', r)).toBe(0);
    const value = (series: string): number => {
      const line = r.stdout.split('\n').find((l) => l.startsWith(`${series} `));
      return line ? Number(line.split(' ')[1]) : NaN;
    };
    expect(value('vsw_dns_queries_total{result="local"}')).toBeGreaterThan(5);
    expect(value('vsw_dns_queries_total{result="forwarded"}')).toBeGreaterThan(0);
    expect(value('vsw_dns_queries_total{result="formerr"}')).toBeGreaterThan(0);
    expect(value('vsw_conntrack_entries')).toBeGreaterThan(0);
    expect(value('vsw_neigh_entries')).toBeGreaterThan(2);
    expect(value('vsw_stage_ended_total{stage="gateway"}')).toBeGreaterThan(0);
  });

  it('--link writes IP NAME ALIAS into /etc/hosts', async () => {
    await run(LNK, ['--link', `${W1}:db`]);
    const r = await execIn(LNK, 'cat', '/etc/hosts');
    expect(r.stdout).toMatch(new RegExp(`${ipOf[W1].replace(/\./g, '\\.')}\\s+${W1} db`));
    const g = await execIn(LNK, 'getent', 'hosts', 'db');
    expect(g.stdout).toContain(ipOf[W1]);
  });

  // ---------------------------------------------------------------- internal and icc

  it('--internal: no route out, and no published ports', async () => {
    await d.vswOk(['network', 'create', '--internal', INT]);
    await d.vswOk(['run', '-d', '--name', IN1, '--network', INT, '--', 'sleep', '600']);
    const inet = await d.vswJson<NetworkInfo>(['network', 'inspect', INT]);
    expect((await ping(IN1, inet.gateway, 1)).received).toBe(1);
    expect((await ping(IN1, OUTSIDE_IP, 1)).received).toBe(0);
    const r = await d.vsw(['run', '-d', '--name', `${P}-i2`, '--network', INT, '-p', '9090:80', '--', 'sleep', '600']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/internal/);
  });

  it('--icc=false: containers cannot reach each other, only the gateway', async () => {
    await d.vswOk(['network', 'create', '--icc=false', NOICC]);
    await d.vswOk(['run', '-d', '--name', Q1, '--network', NOICC, '--', 'sleep', '600']);
    await d.vswOk(['run', '-d', '--name', Q2, '--network', NOICC, '--', 'sleep', '600']);
    const n = await d.vswJson<NetworkInfo>(['network', 'inspect', NOICC]);
    const q2 = n.endpoints.find((e) => e.container === Q2)!;
    expect((await ping(Q1, n.gateway, 1)).received).toBe(1);
    expect((await ping(Q1, q2.ip, 2)).received).toBe(0);
    expect((await ping(Q1, OUTSIDE_IP, 1)).received).toBe(1);
  });

  it('network connect --alias: the alias resolves in that network only', async () => {
    const N2 = `${P}-n2`;
    const Z1 = `${P}-z1`;
    await d.vswOk(['network', 'create', N2]);
    await d.vswOk(['run', '-d', '--name', Z1, '--network', N2, '--', 'sleep', '600']);
    await d.vswOk(['network', 'connect', '--alias', 'db2', N2, C3]);
    const n2 = await d.vswJson<NetworkInfo>(['network', 'inspect', N2]);
    const c3 = n2.endpoints.find((e) => e.container === C3)!;
    expect(c3.aliases).toEqual(['db2']);
    expect(await dig(Z1, 'db2')).toEqual([c3.ip]);
    expect(await dig(Z1, C3)).toEqual([c3.ip]);                 // its name, in n2: the n2 address
    const other = await execInOpts(Z1, ['dig', '+time=2', '+tries=1', W1], { timeoutMs: 20_000 });
    expect(other.stdout).toContain('status: NXDOMAIN');         // W1 is not on n2
    expect(await dig(C3, 'db2')).toEqual([c3.ip]);              // C3 is on both
  });

  it('after kill -9 and a restart, masquerade, published ports and DNS work again', async () => {
    await d.kill9();
    await d.restart();
    const r = await curl(OUT, `http://${UPLINK_IP}:8080/`, 5);
    expect(r.code, r.out).toBe(0);
    const c = await curl(C3, `http://${OUTSIDE_IP}/`);
    expect(c.code, c.out).toBe(0);
    expect((await dig(C3, 'web')).sort()).toEqual([ipOf[W1], ipOf[W2]].sort());
  });

  it('removing a published container drops its flows', async () => {
    const before = await d.vswJson<ConntrackEntryInfo[]>(['conntrack', '--format', 'json']);
    expect(before.some((e) => e.kind === 'dnat')).toBe(true);
    await d.vswOk(['rm', '-f', WEB]);
    const after = await d.vswJson<ConntrackEntryInfo[]>(['conntrack', '--format', 'json']);
    expect(after.filter((e) => e.kind === 'dnat' && e.orig.dport === 5353)).toEqual([]);
    const r = await execInOpts(OUT, ['curl', '-sS', '--max-time', '2', `http://${UPLINK_IP}:8080/`], { timeoutMs: 10_000 });
    expect(r.code).not.toBe(0);
  });
});
