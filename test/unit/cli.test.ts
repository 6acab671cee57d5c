// The `vsw` CLI as a user runs it: a child process (compiled JS) against the real API server
// backed by the in-memory FakeEngine.
//
// Build: only the CLI and what it imports (control/cli.ts -> cli/*, client, errors, format, types)
// are compiled, into a temp dir, so that other modules being worked on cannot break this
// test. Type errors in control/ fail the build; those in dataplane/ and workers/ (reached
// only through type imports, e.g. TraceResult, or by `vsw trace` at run time) are shown
// but tolerated: tsc emits anyway, and no test here loads them. Node finds `commander`
// through NODE_PATH. The child is spawned asynchronously (never
// spawnSync): the API server it talks to runs in this process's event loop.

import { execFileSync, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startApi, type ApiServer } from '../../control/api';
import { SystemError } from '../../control/errors';
import type { ContainerInfo, NetworkInfo } from '../../control/types';
import { FakeEngine } from '../fixtures/fake-engine';

const REPO = path.resolve(__dirname, '..', '..');
let outDir: string;
let cliJs: string;
let tmp: string;
let sock: string;
let engine: FakeEngine;
let api: ApiServer;

interface Result { code: number | null; signal: string | null; stdout: string; stderr: string }

function vsw(args: string[], opts: { env?: NodeJS.ProcessEnv; socket?: string | null } = {}): Promise<Result> {
  const sockArgs = opts.socket === null ? [] : ['--socket', opts.socket ?? sock];
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_PATH: path.join(REPO, 'node_modules'), ...opts.env };
  if (!opts.env || !('VSW_SOCKET' in opts.env)) delete env.VSW_SOCKET;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliJs, ...sockArgs, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => { stdout += c; });
    child.stderr.on('data', (c) => { stderr += c; });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vsw-cli-'));
  outDir = path.join(tmp, 'dist');
  const tsc = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
  cliJs = path.join(outDir, 'control', 'cli.js');
  try {
    execFileSync(process.execPath, [tsc,
      '--outDir', outDir, '--rootDir', REPO, '--module', 'commonjs', '--moduleResolution', 'node',
      '--target', 'ES2022', '--lib', 'ES2022', '--types', 'node', '--strict', '--esModuleInterop',
      '--skipLibCheck', path.join(REPO, 'control', 'cli.ts')], { cwd: REPO, stdio: 'pipe' });
  } catch (e) {
    const out = (e as { stdout?: Buffer }).stdout?.toString() ?? String(e);
    const errors = out.split('\n').filter((l) => /^\S+\(\d+,\d+\): error/.test(l));
    const ours = errors.filter((l) => !/^(dataplane|workers)\//.test(l));
    if (ours.length > 0 || errors.length === 0 || !fs.existsSync(cliJs)) throw new Error(`compiling the CLI failed:\n${out}`);
    console.warn(`cli.test: tolerated type errors outside control/ (not loaded by these tests):\n${errors.join('\n')}`);
  }
  sock = path.join(tmp, 'run', 'vsw.sock');
}, 120_000);

afterAll(async () => {
  await api?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

beforeEach(async () => {
  await api?.close();
  engine = new FakeEngine();
  api = await startApi(engine, sock);
});

describe('help and usage errors', () => {
  it('--help lists every command and mentions VSW_SOCKET', async () => {
    const r = await vsw(['--help'], { socket: null });
    expect(r.code).toBe(0);
    for (const c of ['network', 'run', 'exec', 'ps', 'port', 'rm', 'fdb', 'neigh', 'conntrack', 'stats', 'daemon']) {
      expect(r.stdout).toMatch(new RegExp(`^  ${c}\\b.*\\S`, 'm'));
    }
    expect(r.stdout).toContain('VSW_SOCKET');
    expect(r.stdout).toContain('--socket');
  });

  it('--help works on every command', async () => {
    const cmds = [
      ['network'], ['network', 'create'], ['network', 'ls'], ['network', 'inspect'], ['network', 'rm'],
      ['network', 'connect'], ['network', 'disconnect'], ['run'], ['exec'], ['ps'], ['rm'], ['fdb'], ['stats'], ['daemon'],
    ];
    const results = await Promise.all(cmds.map((c) => vsw([...c, '--help'])));
    results.forEach((r, i) => {
      expect([cmds[i], r.code]).toEqual([cmds[i], 0]);
      expect(r.stdout).toMatch(/^Usage: vsw /);
    });
    expect(results[1].stdout).toMatch(/--subnet <cidr>/);
    expect(results[1].stdout).toMatch(/--ip-range <cidr>/);
    expect(results[7].stdout).toMatch(/--network <net>/);
    expect(results[7].stdout).toContain('-- CMD');
    expect(results[13].stdout).toMatch(/--fdb-max-per-port <n>/);
  });

  it('usage errors exit 2 with a clear message', async () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /Usage: vsw/],
      [['frobnicate'], /vsw: unknown command 'frobnicate'/],
      [['network', 'create'], /vsw: missing required argument 'name'/],
      [['network', 'create', '--mtu', 'abc', 'n1'], /vsw: option '--mtu <bytes>' argument 'abc' is invalid. Not an integer./],
      [['network', 'create', '--bogus', 'n1'], /vsw: unknown option '--bogus'/],
      [['network', 'inspect'], /missing required argument 'name'/],
      [['network', 'connect', 'n1'], /missing required argument 'container'/],
      [['network', 'ls', '--format', 'xml'], /argument 'xml' is invalid. Allowed choices are table, json/],
      [['ps', '--format', 'yaml'], /Allowed choices are table, json/],
      [['exec', 'c1'], /vsw: exec needs a command: vsw exec NAME -- CMD/],
      [['exec', 'c1', '--'], /exec needs a command/],
      [['run', '-d', '--', 'sleep', '1'], /required option '--name <name>' not specified/],
      [['rm'], /missing required argument 'name'/],
      [['daemon', '--workers', 'many'], /option '--workers <n>' argument 'many' is invalid. Not an integer./],
      [['daemon', '--workers', '17'], /Must be from 1 to 16/],
      [['daemon', '--fdb-max', '0'], /Must be at least 1/],
      [['ps', 'extra'], /too many arguments/],
    ];
    const results = await Promise.all(cases.map(([a]) => vsw(a)));
    results.forEach((r, i) => {
      expect([cases[i][0], r.code]).toEqual([cases[i][0], 2]);
      expect(r.stderr).toMatch(cases[i][1]);
      expect(r.stdout).toBe('');
    });
    // a pointer to the right help
    expect(results[2].stderr).toContain("vsw network create --help");
    // nothing reached the daemon
    expect(engine.calls).toEqual([]);
  });

  it('--help lists the L3 commands and options', async () => {
    // descriptions wrap at 80 columns: compare with the whitespace squeezed
    const help = async (args: string[]): Promise<string> => {
      const r = await vsw([...args, '--help']);
      expect([args, r.code]).toEqual([args, 0]);
      return r.stdout.replace(/\s+/g, ' ');
    };
    const [create, connect, run, ps, port, neigh, conntrack, daemon, ls] = await Promise.all([
      help(['network', 'create']), help(['network', 'connect']), help(['run']), help(['ps']), help(['port']),
      help(['neigh']), help(['conntrack']), help(['daemon']), help(['network', 'ls']),
    ]);
    expect(create).toContain(' --internal no route out and no published ports');
    expect(create).toContain(' --icc <true|false> whether containers of the network may talk to each other (default true;');
    expect(create).toContain(' --dns-order <order> order of the addresses in a DNS answer for a name with several: rotate (default), random or fixed');
    expect(connect).toContain(' --alias <name> an extra DNS name of the container in this network (repeatable)');
    expect(run).toContain('[-p [IP:]HOSTPORT:PORT[/tcp|udp]]... [--alias NAME]... [--link NAME[:ALIAS]]...');
    expect(run).toContain(' -p, --publish <mapping> publish a container port: [IP:]HOSTPORT:PORT[/tcp|udp] (repeatable;');
    expect(run).toContain(' --alias <name> an extra DNS name of the container in its network (repeatable)');
    expect(run).toContain(" --link <name[:alias]> add container NAME's address to this container's /etc/hosts");
    expect(ps).toContain('NAME ID NETWORK IP MAC STATUS PORTS COMMAND');
    expect(ls).toContain('FLAGS');
    expect(port).toMatch(/^Usage: vsw port \[options\] <name> \[port\] /);
    expect(port).toContain('PORT/PROTO -> ADDRESS:HOSTPORT');
    expect(neigh).toMatch(/^Usage: vsw neigh \[options\] \[network\] /);
    expect(neigh).toContain('NETWORK IP MAC STATE AGE');
    expect(neigh).toMatch(/--format <format>/);
    expect(conntrack).toContain('PROTO STATE ORIG REPLY KIND NETWORK EXPIRES PKTS');
    expect(conntrack).toMatch(/--format <format>/);
    for (const o of ['--uplink <dev>', '--uplink-ip <cidr>', '--uplink-gateway <ip>', '--dns <ip[:port]>', '--conntrack-max <n>',
      '--docker-plugin [name]', '--docker-plugin-dir <dir>', '--docker-host <url>']) {
      expect(daemon).toContain(` ${o} `);
    }
    expect(daemon).toMatch(/--conntrack-max <n> [^]*\(default: 65536\)/);
    expect(daemon).toMatch(/--dns <ip\[:port\]> [^]*repeatable[^]*resolv\.conf/);
  });

  it('usage errors of the L3 options exit 2 with a clear message; nothing reaches the daemon', async () => {
    const form = /expected \[IP:\]HOSTPORT:PORT\[\/tcp\|udp\], e\.g\. 8080:80 or 10\.89\.0\.1:5353:53\/udp/;
    const pub = /vsw: option '-p, --publish <mapping>' argument '[^']*' is invalid\. /;
    const cases: Array<[string[], RegExp[]]> = [
      // run -p
      [['run', '--name', 'c', '-p', '8080'], [pub, /The host port is missing \(random host ports are not supported\)/, form]],
      [['run', '--name', 'c', '-p', '8000-8010:80'], [pub, /Port ranges are not supported/, form]],
      [['run', '--name', 'c', '--publish', '[::1]:80:80'], [pub, /IPv6 addresses are not supported/, form]],
      [['run', '--name', 'c', '-p', '::1:80:80'], [/IPv6 addresses are not supported/]],
      [['run', '--name', 'c', '-p', '80:80/sctp'], [/The protocol 'sctp' is not tcp or udp/, form]],
      [['run', '--name', 'c', '-p', '80:0'], [/The container port 0 is not from 1 to 65535/]],
      [['run', '--name', 'c', '-p', '65536:80'], [/The host port 65536 is not from 1 to 65535/]],
      [['run', '--name', 'c', '-p', 'web:80'], [/The host port 'web' is not a number/, form]],
      [['run', '--name', 'c', '-p', '1.2.3:80:80'], [/'1\.2\.3' is not an IPv4 address/, form]],
      [['run', '--name', 'c', '-p', '127.0.0.1:8080:80'], [/127\.0\.0\.1 is a loopback address: ports are published on the switch's addresses/]],
      [['run', '--name', 'c', '-p=80:80'], [/is invalid/]],
      [['run', '--name', 'c', '-p', '8080:80', '-p', '0.0.0.0:8080:81'], [/^vsw: host port 8080\/tcp is published twice \(0\.0\.0\.0:8080 and 0\.0\.0\.0:8080\)$/m]],
      [['run', '--name', 'c', '-p', '10.89.0.1:53:53/udp', '-p', '53:5353/udp'], [/host port 53\/udp is published twice/]],
      // run --alias / --link
      [['run', '--name', 'c', '--alias', 'a b'], [/vsw: option '--alias <name>' argument 'a b' is invalid\. Use dot-separated labels of 1 to 63 letters, digits, '-' or '_'/]],
      [['run', '--name', 'c', '--alias', 'ok', '--alias', 'a..b'], [/argument 'a\.\.b' is invalid/]],
      [['run', '--name', 'c', '--alias', 'x'.repeat(64)], [/is invalid\. Use dot-separated labels/]],
      [['run', '--name', 'c', '--alias', ''], [/Alias must not be empty/]],
      [['run', '--name', 'c', '--link', 'a/b'], [/vsw: option '--link <name\[:alias\]>' argument 'a\/b' is invalid\. 'a\/b' is not a container name \(expected NAME\[:ALIAS\], e\.g\. db or db:database\)/]],
      [['run', '--name', 'c', '--link', 'db:-x'], [/argument 'db:-x' is invalid\. Use dot-separated labels/]],
      // -p/--alias/--link need a network
      [['run', '--name', 'c', '--network', 'host', '-p', '80:80'], [/^vsw: -p\/--publish needs a network: not with --network host$/m]],
      [['run', '--name', 'c', '--network', 'none', '--alias', 'x', '--link', 'db'], [/^vsw: --alias, --link need a network: not with --network none$/m]],
      [['run', '--name', 'c', '--network', 'container:db', '-p', '80:80'], [/needs a network: not with --network container:db/]],
      // network create
      [['network', 'create', '--icc', 'maybe', 'n1'], [/vsw: option '--icc <true\|false>' argument 'maybe' is invalid\. Expected true or false\./]],
      [['network', 'create', '--icc', 'n1'], [/argument 'n1' is invalid\. Expected true or false|missing required argument 'name'/]],
      [['network', 'create', '--dns-order', 'sorted', 'n1'], [/option '--dns-order <order>' argument 'sorted' is invalid\. Allowed choices are rotate, random, fixed\./]],
      [['network', 'create', '--internal=yes', 'n1'], [/vsw: unknown option '--internal=yes'/]],
      // network connect --alias
      [['network', 'connect', '--alias', 'a_b.-c', 'n1', 'c1'], [/option '--alias <name>' argument 'a_b\.-c' is invalid/]],
      // port
      [['port'], [/missing required argument 'name'/]],
      [['port', 'c1', 'http'], [/argument 'http' is invalid .*\. Expected PORT\[\/tcp\|udp\], e\.g\. 80 or 53\/udp\.|Expected PORT\[\/tcp\|udp\]/]],
      [['port', 'c1', '80/sctp'], [/Expected PORT\[\/tcp\|udp\]/]],
      [['port', 'c1', '0'], [/Expected PORT\[\/tcp\|udp\]/]],
      [['port', 'c1', '80', 'x'], [/too many arguments/]],
      // neigh, conntrack
      [['neigh', '--format', 'xml'], [/Allowed choices are table, json/]],
      [['neigh', 'a', 'b'], [/too many arguments/]],
      [['conntrack', 'x'], [/too many arguments/]],
      [['conntrack', '--format', 'yaml'], [/Allowed choices are table, json/]],
      // daemon: each option's own value
      [['daemon', '--uplink', 'a-very-long-interface-name'], [/option '--uplink <dev>' argument '.*' is invalid\. Expected an interface name: 1 to 15 characters, without '\/', ':' or spaces\./]],
      [['daemon', '--uplink', 'eth0:1'], [/Expected an interface name/]],
      [['daemon', '--uplink-ip', '198.51.100.2'], [/option '--uplink-ip <cidr>' argument '198\.51\.100\.2' is invalid\. Expected an IPv4 address with its prefix length, e\.g\. 198\.51\.100\.2\/24\./]],
      [['daemon', '--uplink-ip', '198.51.100.2/33'], [/The prefix length must be from 1 to 32/]],
      [['daemon', '--uplink-ip', '198.51.100.0/24'], [/198\.51\.100\.0 is the network address of 198\.51\.100\.0\/24: give the switch's own address, e\.g\. 198\.51\.100\.2\/24\./]],
      [['daemon', '--uplink-ip', '198.51.100.255/24'], [/is the broadcast address of 198\.51\.100\.0\/24/]],
      [['daemon', '--uplink-ip', '127.0.0.2/8'], [/127\.0\.0\.2 is not a unicast address/]],
      [['daemon', '--uplink-ip', 'fe80::1/64'], [/Expected an IPv4 address with its prefix length/]],
      [['daemon', '--uplink-gateway', 'gw'], [/option '--uplink-gateway <ip>' argument 'gw' is invalid\. Expected the uplink gateway, an IPv4 address like 198\.51\.100\.1\./]],
      [['daemon', '--uplink-gateway', '198.51.100.1/24'], [/Expected the uplink gateway/]],
      [['daemon', '--dns', '1.1.1'], [/option '--dns <ip\[:port\]>' argument '1\.1\.1' is invalid\. Expected IP\[:PORT\]: an IPv4 address and optionally a port from 1 to 65535, e\.g\. 1\.1\.1\.1 or 10\.0\.0\.53:5353\./]],
      [['daemon', '--dns', '1.1.1.1', '--dns', '1.1.1.1:0'], [/argument '1\.1\.1\.1:0' is invalid/]],
      [['daemon', '--dns', '1.1.1.1:65536'], [/Expected IP\[:PORT\]/]],
      [['daemon', '--dns', '2001:db8::53'], [/Expected IP\[:PORT\]/]],
      [['daemon', '--dns', 'dns.google'], [/Expected IP\[:PORT\]/]],
      [['daemon', '--conntrack-max', '0'], [/option '--conntrack-max <n>' argument '0' is invalid\. Must be from 1 to 16777216\./]],
      [['daemon', '--conntrack-max', 'lots'], [/Not an integer/]],
      [['daemon', '--docker-host', 'unix:///run/docker.sock'], [/--docker-host needs --docker-plugin/]],
      [['daemon', '--docker-plugin-dir', '/tmp/x'], [/--docker-plugin-dir needs --docker-plugin/]],
      [['daemon', '--docker-plugin', 'my/plugin'], [/--docker-plugin my\/plugin: a plugin name is 1 to 63 characters/]],
      [['daemon', '--docker-plugin', '--docker-host', 'tcp://10.0.0.1:2375'], [/--docker-host tcp:\/\/10\.0\.0\.1:2375: expected unix:\/\/\/PATH/]],
    ];
    const results = await Promise.all(cases.map(([a]) => vsw(a)));
    results.forEach((r, i) => {
      expect([cases[i][0], r.code, r.stdout]).toEqual([cases[i][0], 2, '']);
      for (const re of cases[i][1]) expect([cases[i][0], r.stderr]).toEqual([cases[i][0], expect.stringMatching(re)]);
      expect(r.stderr).toMatch(/\(run 'vsw [a-z ]+--help' for usage\)/);
    });
    expect(engine.calls).toEqual([]);
  });
});

describe('talking to the daemon', () => {
  it('unreachable daemon: clear message, exit 1', async () => {
    const missing = path.join(tmp, 'nowhere.sock');
    const r = await vsw(['ps'], { socket: missing });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`vsw: cannot reach the vsw daemon at ${missing} (is \`vsw daemon\` running? set --socket or VSW_SOCKET)\n`);
  });

  it('VSW_SOCKET selects the socket; --socket overrides it', async () => {
    const r = await vsw(['network', 'ls'], { socket: null, env: { VSW_SOCKET: sock } });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('bridge');
    const r2 = await vsw(['--socket', sock, 'network', 'ls'], { socket: null, env: { VSW_SOCKET: '/nonexistent/x.sock' } });
    expect(r2.code).toBe(0);
    // --socket is also accepted after the command
    const r3 = await vsw(['ps', '--socket', sock], { socket: null });
    expect(r3.code).toBe(0);
  });

  it('without --socket or VSW_SOCKET it uses /run/vsw/vsw.sock', async () => {
    const r = await vsw(['ps'], { socket: null });
    if (r.code !== 0) expect(r.stderr).toContain('/run/vsw/vsw.sock');
  });
});

describe('networks', () => {
  it('network ls: table and json', async () => {
    expect((await vsw(['network', 'create', '--subnet', '10.20.0.0/24', '--mtu', '9000', 'jumbo'])).stdout).toBe('jumbo\n');
    const t = await vsw(['network', 'ls']);
    expect(t.code).toBe(0);
    const lines = t.stdout.trimEnd().split('\n');
    expect(lines[0].split(/\s{2,}/)).toEqual(['NAME', 'ID', 'SUBNET', 'GATEWAY', 'MTU', 'ENDPOINTS', 'DEFAULT', 'FLAGS']);
    expect(lines[1].split(/\s+/)).toEqual(['bridge', '0', '172.17.0.0/16', '172.17.0.1', '1500', '0', 'yes', '-']);
    expect(lines[2].split(/\s+/)).toEqual(['jumbo', '1', '10.20.0.0/24', '10.20.0.1', '9000', '0', 'no', '-']);
    // aligned: every column starts at the same offset on every line
    const col = (l: string, word: string): number => l.indexOf(word);
    expect(col(lines[1], '172.17.0.0/16')).toBe(col(lines[0], 'SUBNET'));
    expect(col(lines[2], '10.20.0.0/24')).toBe(col(lines[0], 'SUBNET'));

    const j = await vsw(['network', 'ls', '--format', 'json']);
    expect(j.code).toBe(0);
    const nets = JSON.parse(j.stdout) as NetworkInfo[];
    expect(nets.map((n) => [n.name, n.subnet, n.mtu])).toEqual([['bridge', '172.17.0.0/16', 1500], ['jumbo', '10.20.0.0/24', 9000]]);
    expect(j.stdout).toContain('\n  {'); // pretty-printed
  });

  it('network create sends the options and reports daemon errors with exit 1', async () => {
    const ok = await vsw(['network', 'create', '--subnet', '10.30.0.0/16', '--gateway', '10.30.0.254', '--ip-range', '10.30.1.0/24', 'n1']);
    expect([ok.code, ok.stdout]).toEqual([0, 'n1\n']);
    expect(engine.calls).toContainEqual(['createNetwork', { name: 'n1', subnet: '10.30.0.0/16', gateway: '10.30.0.254', ipRange: '10.30.1.0/24' }]);

    const dup = await vsw(['network', 'create', 'n1']);
    expect([dup.code, dup.stderr, dup.stdout]).toEqual([1, 'vsw: network n1 already exists\n', '']);
    const overlap = await vsw(['network', 'create', '--subnet', '10.30.5.0/24', 'n2']);
    expect(overlap.code).toBe(1);
    expect(overlap.stderr).toBe("vsw: subnet 10.30.5.0/24 overlaps network 'n1' (10.30.0.0/16)\n");
    const bad = await vsw(['network', 'create', '--subnet', '10.0.0.0/99', 'n3']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^vsw: invalid subnet/);
  });

  it('network inspect prints the JSON; connect/disconnect; rm refused while in use', async () => {
    await vsw(['network', 'create', '--subnet', '10.40.0.0/24', 'n1']);
    expect((await vsw(['run', '--name', 'c1', '--network', 'none'])).stdout).toBe('c1\n');
    const con = await vsw(['network', 'connect', '--ip', '10.40.0.9', 'n1', 'c1']);
    expect([con.code, con.stderr]).toEqual([0, '']);
    const ins = await vsw(['network', 'inspect', 'n1']);
    expect(ins.code).toBe(0);
    const info = JSON.parse(ins.stdout) as NetworkInfo;
    expect(info).toMatchObject({ name: 'n1', subnet: '10.40.0.0/24', gateway: '10.40.0.1' });
    expect(info.endpoints).toEqual([expect.objectContaining({ container: 'c1', ip: '10.40.0.9', mac: expect.stringMatching(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/) })]);
    expect(info.ports.length).toBe(1);

    const busy = await vsw(['network', 'rm', 'n1']);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(/^vsw: network n1 has active endpoints/);

    expect((await vsw(['network', 'disconnect', 'n1', 'c1'])).code).toBe(0);
    const rm = await vsw(['network', 'rm', 'n1']);
    expect([rm.code, rm.stdout]).toEqual([0, 'n1\n']);
    const gone = await vsw(['network', 'inspect', 'n1']);
    expect([gone.code, gone.stderr]).toEqual([1, 'vsw: no such network: n1\n']);
  });

  it('names with odd characters are URL-encoded', async () => {
    await vsw(['network', 'create', 'a.b_c']);
    expect((await vsw(['network', 'inspect', 'a.b_c'])).code).toBe(0);
    const r = await vsw(['network', 'inspect', 'x/y?z']);
    expect(r.stderr).toBe('vsw: no such network: x/y?z\n');
  });
});

describe('containers', () => {
  it('run -d prints the name; ps shows table and json; rm', async () => {
    const r = await vsw(['run', '-d', '--name', 'web', '--', 'sleep', '1000']);
    expect([r.code, r.stdout, r.stderr]).toEqual([0, 'web\n', '']);
    expect(engine.calls).toContainEqual(['createContainer', { name: 'web', detach: true, rm: false, cmd: ['sleep', '1000'] }]);

    await vsw(['network', 'create', '--subnet', '10.50.0.0/24', 'n1']);
    expect((await vsw(['run', '--name', 'db', '--network', 'n1', '--ip', '10.50.0.5'])).stdout).toBe('db\n');
    await vsw(['run', '--name', 'h', '--network', 'host']);
    await engine.containerExited('db', 3);

    const t = await vsw(['ps']);
    expect(t.code).toBe(0);
    const lines = t.stdout.trimEnd().split('\n');
    expect(lines[0].split(/\s{2,}/)).toEqual(['NAME', 'ID', 'NETWORK', 'IP', 'MAC', 'STATUS', 'PORTS', 'COMMAND']);
    expect(lines[1]).toMatch(/^web\s+[0-9a-f]{12}\s+bridge\s+172\.17\.0\.2\s+02:42:ac:11:00:02\s+running\s+-\s+sleep 1000$/);
    expect(lines[2]).toMatch(/^db\s+[0-9a-f]{12}\s+n1\s+10\.50\.0\.5\s+\S+\s+exited \(3\)\s+-\s+-$/);
    expect(lines[3]).toMatch(/^h\s+[0-9a-f]{12}\s+host\s+-\s+-\s+created\s+-\s+-$/);
    expect(lines[1].indexOf('running')).toBe(lines[0].indexOf('STATUS'));

    const j = await vsw(['ps', '--format', 'json']);
    const cs = JSON.parse(j.stdout) as ContainerInfo[];
    expect(cs.map((c) => [c.name, c.status, c.exitCode])).toEqual([['web', 'running', undefined], ['db', 'exited', 3], ['h', 'created', undefined]]);

    // running: refused without -f (daemon's message), removed with -f
    const refused = await vsw(['rm', 'web']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^vsw: container web is running/);
    const rm = await vsw(['rm', '-f', 'web']);
    expect([rm.code, rm.stdout]).toEqual([0, 'web\n']);
    expect(engine.calls).toContainEqual(['removeContainer', 'web', true]);
    const rm2 = await vsw(['rm', 'db', 'nope', 'h']);
    expect(rm2.code).toBe(1);
    expect(rm2.stdout).toBe('db\nh\n');
    expect(rm2.stderr).toBe('vsw: no such container: nope\n');
    expect((await vsw(['ps', '--format', 'json'])).stdout).toBe('[]\n');
  });

  it('run sends network/ip/rm; options after CMD belong to CMD', async () => {
    await vsw(['run', '-d', '--rm', '--name', 'a', 'sh', '-c', 'echo hi', '--name', 'x']);
    expect(engine.calls).toContainEqual(['createContainer', { name: 'a', detach: true, rm: true, cmd: ['sh', '-c', 'echo hi', '--name', 'x'] }]);
    await vsw(['run', '--name', 'b', '--network', 'container:a']);
    expect(engine.containers.get('b')).toMatchObject({ mode: 'container', sharedWith: 'a' });
    const dup = await vsw(['run', '-d', '--name', 'a', '--', 'true']);
    expect([dup.code, dup.stderr]).toEqual([1, 'vsw: container a already exists\n']);
    const outside = await vsw(['run', '--name', 'c', '--ip', '192.168.9.9']);
    expect(outside.code).toBe(1);
    expect(outside.stderr).toBe('vsw: address 192.168.9.9 is not inside subnet 172.17.0.0/16\n');
  });

  it('run of a missing command: 127, and nothing is created (foreground or -d)', async () => {
    for (const detach of [[], ['-d']]) {
      const r = await vsw(['run', ...detach, '--rm', '--name', 'fg', '--', 'vsw-no-such-command-xyz', 'arg']);
      expect(r.code).toBe(127);
      expect(r.stderr).toContain('vsw: vsw-no-such-command-xyz: command not found');
      expect(engine.calls.filter((c) => c[0] === 'createContainer')).toEqual([]);
      expect(engine.containers.has('fg')).toBe(false);
    }
  });

  it('exec: unknown container is an error; missing command is 127', async () => {
    const r = await vsw(['exec', 'nope', '--', 'true']);
    expect([r.code, r.stderr]).toEqual([1, 'vsw: no such container: nope\n']);
    await vsw(['run', '--name', 'c1']);
    const r2 = await vsw(['exec', 'c1', '--', 'vsw-no-such-command-xyz']);
    expect(r2.code).toBe(127);
    expect(engine.calls.filter((c) => c[0] === 'containerExited')).toEqual([]);
  });

  // Host mode enters the daemon's namespace with nsenter: the fake daemon's is this
  // process's own, which needs CAP_SYS_ADMIN to setns() into. Skipped when not root.
  const canNsenter = process.getuid?.() === 0 &&
    spawnSync('nsenter', [`--net=/proc/${process.pid}/ns/net`, '--', 'true']).status === 0;
  it.skipIf(!canNsenter)('foreground run in host mode: exit code, signal, stdio (root only)', async () => {
    const r = await vsw(['run', '--name', 'h1', '--network', 'host', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect([r.code, r.stdout, r.stderr]).toEqual([3, 'out\n', 'err\n']);
    expect(engine.containers.get('h1')).toMatchObject({ status: 'exited', exitCode: 3 });

    const k = await vsw(['run', '--rm', '--name', 'h2', '--network', 'host', '--', 'sh', '-c', 'kill -TERM $$']);
    expect(k.code).toBe(128 + 15);
    expect(engine.calls).toContainEqual(['containerExited', 'h2', 143]);
    expect(engine.containers.has('h2')).toBe(false);

    const e = await vsw(['exec', 'h1', '--', 'sh', '-c', 'exit 7']);
    expect(e.code).toBe(7);
  });

  it.skipIf(!canNsenter)('SIGTERM to vsw is forwarded to the command (root only)', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_PATH: path.join(REPO, 'node_modules') };
    const child = spawn(process.execPath, [cliJs, '--socket', sock, 'run', '--name', 'sig', '--network', 'host', '--',
      'sh', '-c', 'trap "exit 42" TERM; echo ready; while :; do sleep 0.05; done'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve) => child.stdout.on('data', (d) => { if (String(d).includes('ready')) resolve(); }));
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(code).toBe(42);
    expect(engine.calls).toContainEqual(['containerExited', 'sig', 42]);
  });
});

describe('L3: networks, published ports, aliases, links, neighbours, conntrack', () => {
  it('network create --internal --icc --dns-order: sent only when given; ls FLAGS; inspect JSON', async () => {
    expect((await vsw(['network', 'create', '--internal', '--icc=false', '--dns-order', 'random', 'n1'])).stdout).toBe('n1\n');
    expect(engine.calls).toContainEqual(['createNetwork', { name: 'n1', internal: true, icc: false, dnsOrder: 'random' }]);
    expect((await vsw(['network', 'create', '--icc', 'TRUE', '--dns-order=fixed', 'n2'])).code).toBe(0);
    expect(engine.calls).toContainEqual(['createNetwork', { name: 'n2', icc: true, dnsOrder: 'fixed' }]);
    expect((await vsw(['network', 'create', '--icc', 'false', 'n3'])).code).toBe(0);
    expect(engine.calls).toContainEqual(['createNetwork', { name: 'n3', icc: false }]);
    await vsw(['network', 'create', 'n4']);
    expect(engine.calls).toContainEqual(['createNetwork', { name: 'n4' }]);

    const lines = (await vsw(['network', 'ls'])).stdout.trimEnd().split('\n');
    expect(lines[0].split(/\s{2,}/)).toEqual(['NAME', 'ID', 'SUBNET', 'GATEWAY', 'MTU', 'ENDPOINTS', 'DEFAULT', 'FLAGS']);
    expect(lines.slice(1).map((l) => [l.split(/\s+/)[0], l.split(/\s+/).pop()])).toEqual([
      ['bridge', '-'], ['n1', 'internal,no-icc,dns=random'], ['n2', 'dns=fixed'], ['n3', 'no-icc'], ['n4', '-'],
    ]);
    expect(lines[2].indexOf('internal')).toBe(lines[0].indexOf('FLAGS'));

    const info = JSON.parse((await vsw(['network', 'inspect', 'n1'])).stdout) as NetworkInfo;
    expect(info).toMatchObject({ name: 'n1', internal: true, icc: false, dnsOrder: 'random', gatewayMac: expect.stringMatching(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/) });
    const n4 = JSON.parse((await vsw(['network', 'inspect', 'n4'])).stdout) as NetworkInfo;
    expect(n4).toMatchObject({ internal: false, icc: true, dnsOrder: 'rotate' });
  });

  it('run -p/--alias/--link reach ContainerCreate; ps PORTS and json', async () => {
    await vsw(['run', '-d', '--name', 'db', '--', 'sleep', '1000']);
    const r = await vsw(['run', '-d', '--name', 'web', '-p', '8080:80', '--publish', '10.89.0.1:5353:53/udp', '--publish=8443:443/TCP',
      '--alias', 'www', '--alias', 'web.local', '--link', 'db', '--link', 'db:database', '--', 'sleep', '1000']);
    expect([r.code, r.stdout, r.stderr]).toEqual([0, 'web\n', '']);
    expect(engine.calls).toContainEqual(['createContainer', {
      name: 'web', detach: true, rm: false, cmd: ['sleep', '1000'],
      publish: [
        { hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, proto: 'tcp' },
        { hostIp: '10.89.0.1', hostPort: 5353, containerPort: 53, proto: 'udp' },
        { hostIp: '0.0.0.0', hostPort: 8443, containerPort: 443, proto: 'tcp' },
      ],
      aliases: ['www', 'web.local'],
      links: [{ name: 'db' }, { name: 'db', alias: 'database' }],
    }]);
    // nothing given: none of the fields is sent
    expect(engine.calls).toContainEqual(['createContainer', { name: 'db', detach: true, rm: false, cmd: ['sleep', '1000'] }]);
    // the same host port on two protocols, or on two addresses, is fine
    expect((await vsw(['run', '--name', 'dns', '-p', '10.0.0.1:53:53', '-p', '10.0.0.2:53:53', '-p', '53:53/udp'])).code).toBe(0);

    const t = await vsw(['ps']);
    const lines = t.stdout.trimEnd().split('\n');
    expect(lines[0].split(/\s{2,}/)).toEqual(['NAME', 'ID', 'NETWORK', 'IP', 'MAC', 'STATUS', 'PORTS', 'COMMAND']);
    expect(lines[1]).toMatch(/^db\s+\S+\s+bridge\s+\S+\s+\S+\s+running\s+-\s+sleep 1000$/);
    expect(lines[2]).toMatch(/^web\s+\S+\s+bridge\s+\S+\s+\S+\s+running\s+0\.0\.0\.0:8080->80\/tcp, 10\.89\.0\.1:5353->53\/udp, 0\.0\.0\.0:8443->443\/tcp\s+sleep 1000$/);
    expect(lines[2].indexOf('0.0.0.0:8080')).toBe(lines[0].indexOf('PORTS'));
    expect(lines[1].indexOf('sleep')).toBe(lines[0].indexOf('COMMAND'));
    const cs = JSON.parse((await vsw(['ps', '--format', 'json'])).stdout) as ContainerInfo[];
    const web = cs.find((c) => c.name === 'web')!;
    expect(web.ports).toHaveLength(3);
    expect(web.links).toEqual([{ name: 'db' }, { name: 'db', alias: 'database' }]);
    expect(web.networks[0].aliases).toEqual(['www', 'web.local']);
    expect(cs.find((c) => c.name === 'db')!.ports).toEqual([]);
  });

  it('run: the daemon refusing ports or links is exit 1 with its message, and nothing is created', async () => {
    await vsw(['network', 'create', '--internal', 'priv']);
    const internal = await vsw(['run', '--name', 'a', '--network', 'priv', '-p', '80:80']);
    expect([internal.code, internal.stdout, internal.stderr]).toEqual([1, '', 'vsw: network priv is internal: no port can be published on it\n']);
    await vsw(['run', '--name', 'b', '-p', '8080:80']);
    const taken = await vsw(['run', '--name', 'c', '-p', '10.89.0.1:8080:81']);
    expect([taken.code, taken.stderr]).toEqual([1, 'vsw: host port 8080/tcp is already published by container b\n']);
    const link = await vsw(['run', '--name', 'd', '--link', 'nope:x']);
    expect([link.code, link.stderr]).toEqual([1, 'vsw: cannot link to nope: no such container\n']);
    expect([...engine.containers.keys()]).toEqual(['b']);
  });

  it('network connect --alias: POST .../connect {container, ip?, aliases?} -> connectWith', async () => {
    await vsw(['network', 'create', '--subnet', '10.60.0.0/24', 'n1']);
    await vsw(['run', '--name', 'c1', '--network', 'none']);
    await vsw(['run', '--name', 'c2']);
    const r = await vsw(['network', 'connect', '--alias', 'db', '--alias', 'db.n1', '--ip', '10.60.0.7', 'n1', 'c1']);
    expect([r.code, r.stdout, r.stderr]).toEqual([0, '', '']);
    expect(engine.calls).toContainEqual(['connectWith', 'n1', 'c1', { ip: '10.60.0.7', aliases: ['db', 'db.n1'] }]);
    expect((await vsw(['network', 'connect', 'n1', 'c2'])).code).toBe(0);
    expect(engine.calls).toContainEqual(['connectWith', 'n1', 'c2', {}]);
    const info = JSON.parse((await vsw(['network', 'inspect', 'n1'])).stdout) as NetworkInfo;
    expect(info.endpoints.map((e) => [e.container, e.ip, e.aliases])).toEqual([['c1', '10.60.0.7', ['db', 'db.n1']], ['c2', '10.60.0.2', []]]);
    const again = await vsw(['network', 'connect', '--alias', 'x', 'n1', 'c1']);
    expect([again.code, again.stderr]).toEqual([1, 'vsw: container c1 is already connected to n1\n']);
  });

  it('port NAME [PORT[/PROTO]]: Docker-style lines, the uplink address for 0.0.0.0 when there is one', async () => {
    await vsw(['run', '--name', 'web', '-p', '8080:80', '-p', '10.89.0.1:5353:53/udp']);
    await vsw(['run', '--name', 'plain']);
    let r = await vsw(['port', 'web']);
    expect([r.code, r.stdout, r.stderr]).toEqual([0, '80/tcp -> 0.0.0.0:8080\n53/udp -> 10.89.0.1:5353\n', '']);
    engine.uplink = { device: 'eth0', ip: '198.51.100.2/24', gateway: '198.51.100.1', mac: '02:00:00:00:00:01', portId: 9 };
    r = await vsw(['port', 'web']);
    expect(r.stdout).toBe('80/tcp -> 198.51.100.2:8080\n53/udp -> 10.89.0.1:5353\n');
    expect((await vsw(['port', 'web', '80'])).stdout).toBe('80/tcp -> 198.51.100.2:8080\n');
    expect((await vsw(['port', 'web', '53/udp'])).stdout).toBe('53/udp -> 10.89.0.1:5353\n');
    // only a 0.0.0.0 mapping needs GET /info
    engine.calls.length = 0;
    await vsw(['port', 'web', '53/udp']);
    expect(engine.calls.map((c) => c[0])).toEqual(['inspectContainer']);
    const none = await vsw(['port', 'web', '53']);
    expect([none.code, none.stdout, none.stderr]).toEqual([1, '', "vsw: no public port '53/tcp' published for web\n"]);
    expect(await vsw(['port', 'plain'])).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const missing = await vsw(['port', 'nope']);
    expect([missing.code, missing.stderr]).toEqual([1, 'vsw: no such container: nope\n']);
  });

  it('neigh [NET]: table, json, one network or the uplink; unknown network is exit 1', async () => {
    await vsw(['network', 'create', 'n1']);
    engine.neighEntries = [
      { network: 'bridge', ip: '172.17.0.2', mac: '02:42:ac:11:00:02', state: 'reachable', ageSeconds: 4.6 },
      { network: 'n1', ip: '172.18.0.9', mac: '', state: 'incomplete', ageSeconds: 0 },
      { network: 'uplink', ip: '198.51.100.1', mac: '52:54:00:12:34:56', state: 'stale', ageSeconds: 301 },
    ];
    const t = await vsw(['neigh']);
    expect(t.code).toBe(0);
    expect(t.stdout.trimEnd().split('\n').map((l) => l.split(/\s+/))).toEqual([
      ['NETWORK', 'IP', 'MAC', 'STATE', 'AGE'],
      ['bridge', '172.17.0.2', '02:42:ac:11:00:02', 'reachable', '4'],
      ['n1', '172.18.0.9', '-', 'incomplete', '0'],
      ['uplink', '198.51.100.1', '52:54:00:12:34:56', 'stale', '301'],
    ]);
    expect(engine.calls).toContainEqual(['neigh', undefined]);
    const one = await vsw(['neigh', 'n1', '--format', 'json']);
    expect(JSON.parse(one.stdout)).toEqual([engine.neighEntries[1]]);
    expect(engine.calls).toContainEqual(['neigh', 'n1']);
    const noUplink = await vsw(['neigh', 'uplink']);
    expect([noUplink.code, noUplink.stderr]).toEqual([1, 'vsw: the daemon has no uplink (vsw daemon --uplink)\n']);
    engine.uplink = { device: 'eth0', ip: '198.51.100.2/24', gateway: '198.51.100.1', mac: '02:00:00:00:00:01', portId: 9 };
    expect((await vsw(['neigh', 'uplink'])).stdout.trimEnd().split('\n')).toHaveLength(2);
    const bad = await vsw(['neigh', 'zz']);
    expect([bad.code, bad.stdout, bad.stderr]).toEqual([1, '', 'vsw: no such network: zz\n']);
    engine.neighEntries = [];
    expect((await vsw(['neigh'])).stdout).toBe('NETWORK   IP   MAC   STATE   AGE\n');
    expect((await vsw(['neigh', '--format', 'json'])).stdout).toBe('[]\n');
  });

  it('conntrack: table and json', async () => {
    engine.conntrackEntries = [{
      proto: 'tcp', state: 'ESTABLISHED', kind: 'dnat', network: 'bridge', expiresInSeconds: 431999.9,
      orig: { src: '203.0.113.5', sport: 50000, dst: '198.51.100.2', dport: 8080 },
      reply: { src: '172.17.0.2', sport: 80, dst: '203.0.113.5', dport: 50000 },
      packets: [6, 5], bytes: [500, 4000],
    }, {
      proto: 'udp', state: 'UNREPLIED', kind: 'dns', network: 'bridge', expiresInSeconds: 29,
      orig: { src: '172.17.0.2', sport: 40000, dst: '172.17.0.1', dport: 53 },
      reply: { src: '1.1.1.1', sport: 53, dst: '198.51.100.2', dport: 61001 },
      packets: [1, 0], bytes: [60, 0],
    }];
    const t = await vsw(['conntrack']);
    expect(t.code).toBe(0);
    const lines = t.stdout.trimEnd().split('\n');
    expect(lines.map((l) => l.split(/\s{2,}/))).toEqual([
      ['PROTO', 'STATE', 'ORIG', 'REPLY', 'KIND', 'NETWORK', 'EXPIRES', 'PKTS'],
      ['tcp', 'ESTABLISHED', '203.0.113.5:50000 -> 198.51.100.2:8080', '172.17.0.2:80 -> 203.0.113.5:50000', 'dnat', 'bridge', '431999', '6/5'],
      ['udp', 'UNREPLIED', '172.17.0.2:40000 -> 172.17.0.1:53', '1.1.1.1:53 -> 198.51.100.2:61001', 'dns', 'bridge', '29', '1/0'],
    ]);
    expect(JSON.parse((await vsw(['conntrack', '--format', 'json'])).stdout)).toEqual(engine.conntrackEntries);
    engine.failNext = new SystemError('conntrack table not ready');
    const e = await vsw(['conntrack']);
    expect([e.code, e.stderr]).toEqual([1, 'vsw: conntrack table not ready\n']);
  });
});

describe('fdb and stats', () => {
  it('fdb: table (all or one network) and json', async () => {
    await vsw(['network', 'create', 'n1']);
    engine.fdbEntries = [
      { network: 'bridge', mac: '02:42:ac:11:00:02', vlan: 0, port: 'vsw0a1b2c3d', portId: 1, container: 'web', ageSeconds: 12.7 },
      { network: 'n1', mac: '02:42:ac:12:00:02', vlan: 10, port: 'vsw0a1b2c3e', portId: 2, ageSeconds: 0 },
    ];
    const t = await vsw(['fdb']);
    const lines = t.stdout.trimEnd().split('\n');
    expect(lines[0].split(/\s{2,}/)).toEqual(['NETWORK', 'MAC', 'VLAN', 'PORT', 'CONTAINER', 'AGE']);
    expect(lines[1].split(/\s+/)).toEqual(['bridge', '02:42:ac:11:00:02', '0', 'vsw0a1b2c3d', 'web', '12']);
    expect(lines[2].split(/\s+/)).toEqual(['n1', '02:42:ac:12:00:02', '10', 'vsw0a1b2c3e', '-', '0']);
    const one = await vsw(['fdb', 'n1']);
    expect(one.stdout.trimEnd().split('\n').length).toBe(2);
    expect(engine.calls).toContainEqual(['fdb', 'n1']);
    const j = await vsw(['fdb', 'n1', '--format', 'json']);
    expect(JSON.parse(j.stdout)).toEqual([engine.fdbEntries[1]]);
    const bad = await vsw(['fdb', 'zz']);
    expect([bad.code, bad.stderr]).toEqual([1, 'vsw: no such network: zz\n']);
    engine.fdbEntries = [];
    expect((await vsw(['fdb'])).stdout).toBe('NETWORK   MAC   VLAN   PORT   CONTAINER   AGE\n');
  });

  it('stats: table with drops by reason, and json', async () => {
    engine.portStats = [
      { id: 1, name: 'vsw0a1b2c3d', network: 'bridge', container: 'web', rxPackets: 10, rxBytes: 1500, txPackets: 8, txBytes: 1200, drops: { no_fdb_room: 2, bad_frame: 1 } },
      { id: 0, name: 'vswbr0', network: 'bridge', rxPackets: 0, rxBytes: 0, txPackets: 3, txBytes: 180, drops: {} },
    ];
    const t = await vsw(['stats']);
    const lines = t.stdout.trimEnd().split('\n');
    expect(lines[0].split(/\s{2,}/)).toEqual(['PORT', 'NETWORK', 'CONTAINER', 'RX-PKTS', 'RX-BYTES', 'TX-PKTS', 'TX-BYTES', 'DROPS']);
    expect(lines[1].split(/\s+/)).toEqual(['vsw0a1b2c3d', 'bridge', 'web', '10', '1500', '8', '1200', 'bad_frame=1,no_fdb_room=2']);
    expect(lines[2].split(/\s+/)).toEqual(['vswbr0', 'bridge', '-', '0', '0', '3', '180', '-']);
    const j = await vsw(['stats', '--format', 'json']);
    expect(JSON.parse(j.stdout)).toEqual(engine.portStats);
  });
});

describe('daemon', () => {
  it('without control/daemon.js in the build: a clear error, exit 1', async () => {
    // The test build compiles only the CLI's own imports, so daemon.js is absent there.
    if (fs.existsSync(path.join(outDir, 'control', 'daemon.js'))) return;
    const r = await vsw(['daemon', '--state-dir', path.join(tmp, 'state')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^vsw: the daemon is not part of this build/);
  });

  /** The CLI with a stand-in control/daemon.js next to it that prints the DaemonOptions it was given. */
  let copy: string | undefined;
  const run = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> => new Promise((resolve) => {
    if (copy === undefined) {
      copy = path.join(tmp, 'dist-daemon');
      fs.cpSync(outDir, copy, { recursive: true });
      fs.writeFileSync(path.join(copy, 'control', 'daemon.js'),
        'exports.runDaemon = async (o) => { process.stdout.write(JSON.stringify(o)); setInterval(() => {}, 1000); };\n');
    }
    const e: NodeJS.ProcessEnv = { ...process.env, NODE_PATH: path.join(REPO, 'node_modules'), ...env };
    if (!('VSW_SOCKET' in env)) delete e.VSW_SOCKET;
    const child = spawn(process.execPath, [path.join(copy, 'control', 'cli.js'), ...args], { env: e });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => { stdout += c; });
    child.stderr.on('data', (c) => { stderr += c; });
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });

  it('parses its options into DaemonOptions and calls runDaemon', async () => {
    const d = await run(['daemon']);
    // exits once runDaemon resolves, even with a stray timer left behind
    expect([d.code, d.stderr]).toEqual([0, '']);
    expect(JSON.parse(d.stdout)).toEqual({
      stateDir: '/var/lib/vsw', socket: '/run/vsw/vsw.sock', workers: 2, busyPollUs: 0, defaultNetwork: 'bridge',
      fdbAgingSeconds: 300, fdbMax: 16384, fdbMaxPerPort: 4096, conntrackMax: 65536,
    });
    const d2 = await run(['--socket', '/g.sock', 'daemon', '--state-dir', '/s', '--workers', '4', '--default-subnet', '10.99.0.0/16',
      '--default-network', 'br0', '--fdb-aging', '60', '--fdb-max', '1000', '--fdb-max-per-port', '10', '--busy-poll', '50000', '--rx-ring', '4096']);
    expect(JSON.parse(d2.stdout)).toEqual({
      stateDir: '/s', socket: '/g.sock', workers: 4, busyPollUs: 50000, rxRingFrames: 4096, defaultSubnet: '10.99.0.0/16', defaultNetwork: 'br0',
      fdbAgingSeconds: 60, fdbMax: 1000, fdbMaxPerPort: 10, conntrackMax: 65536,
    });
    expect(JSON.parse((await run(['daemon'], { VSW_SOCKET: '/env.sock' })).stdout).socket).toBe('/env.sock');
    expect(JSON.parse((await run(['--socket', '/g.sock', 'daemon', '--socket', '/d.sock'], { VSW_SOCKET: '/env.sock' })).stdout).socket).toBe('/d.sock');
  });

  it('uplink, DNS and conntrack options go into DaemonOptions', async () => {
    const d = await run(['daemon', '--uplink', 'eth0', '--uplink-ip', '198.51.100.2/24', '--uplink-gateway', '198.51.100.1',
      '--dns', '1.1.1.1', '--dns', '10.0.0.53:5353', '--conntrack-max', '1000']);
    expect([d.code, d.stderr]).toEqual([0, '']);
    expect(JSON.parse(d.stdout)).toEqual({
      stateDir: '/var/lib/vsw', socket: '/run/vsw/vsw.sock', workers: 2, busyPollUs: 0, defaultNetwork: 'bridge',
      fdbAgingSeconds: 300, fdbMax: 16384, fdbMaxPerPort: 4096, conntrackMax: 1000,
      uplink: 'eth0', uplinkIp: '198.51.100.2/24', uplinkGateway: '198.51.100.1', dns: ['1.1.1.1', '10.0.0.53:5353'],
    });
    // a /31 (RFC 3021: both addresses usable) and --opt=value forms
    const d2 = await run(['daemon', '--uplink=veth-up', '--uplink-ip=192.0.2.0/31', '--uplink-gateway=192.0.2.1']);
    expect(JSON.parse(d2.stdout)).toMatchObject({ uplink: 'veth-up', uplinkIp: '192.0.2.0/31', uplinkGateway: '192.0.2.1' });
  });

  it('uplink options that do not fit together are usage errors (exit 2), before the daemon starts', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--uplink', 'eth0'], /^vsw: --uplink needs --uplink-ip CIDR and --uplink-gateway IP \(all three go together\)$/m],
      [['--uplink', 'eth0', '--uplink-ip', '198.51.100.2/24'], /^vsw: --uplink needs --uplink-gateway IP \(all three go together\)$/m],
      [['--uplink', 'eth0', '--uplink-gateway', '198.51.100.1'], /^vsw: --uplink needs --uplink-ip CIDR /m],
      [['--uplink-ip', '198.51.100.2/24', '--uplink-gateway', '198.51.100.1'], /^vsw: --uplink-ip and --uplink-gateway need --uplink DEV/m],
      [['--uplink-ip', '198.51.100.2/24'], /need --uplink DEV/],
      [['--uplink', 'eth0', '--uplink-ip', '198.51.100.2/24', '--uplink-gateway', '198.51.101.1'],
        /^vsw: --uplink-gateway 198\.51\.101\.1 is not inside the uplink subnet 198\.51\.100\.0\/24 \(of --uplink-ip 198\.51\.100\.2\/24\)$/m],
      [['--uplink', 'eth0', '--uplink-ip', '198.51.100.2/24', '--uplink-gateway', '198.51.100.2'], /is the switch's own uplink address/],
      [['--uplink', 'eth0', '--uplink-ip', '198.51.100.2/24', '--uplink-gateway', '198.51.100.255'], /is the broadcast address of 198\.51\.100\.0\/24/],
      [['--uplink', 'eth0', '--uplink-ip', '198.51.100.2/24', '--uplink-gateway', '198.51.100.0'], /is the network address of 198\.51\.100\.0\/24/],
      [['--uplink', 'eth0', '--uplink-ip', '198.51.100.2/32', '--uplink-gateway', '198.51.100.1'], /is not inside the uplink subnet 198\.51\.100\.2\/32/],
    ];
    const results = await Promise.all(cases.map(([a]) => run(['daemon', ...a])));
    results.forEach((r, i) => {
      expect([cases[i][0], r.code, r.stdout]).toEqual([cases[i][0], 2, '']);
      expect(r.stderr).toMatch(cases[i][1]);
      expect(r.stderr).toContain("(run 'vsw daemon --help' for usage)");
    });
  });
});

describe('streams (events, live trace): lines split anywhere by the transport', () => {
  /** A daemon stand-in that sends `line` in two chunks, cut inside its first multi-byte character. */
  const splitServer = (line: string): Promise<{ socket: string; close(): Promise<void> }> => {
    const socket = path.join(tmp, `split-${process.hrtime.bigint()}.sock`);
    const bytes = Buffer.from(`${line}\n`);
    const cut = bytes.findIndex((b) => b >= 0xc0) + 1; // after a UTF-8 lead byte, before its continuation
    expect(cut).toBeGreaterThan(0);
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(bytes.subarray(0, cut));
      setTimeout(() => { res.end(bytes.subarray(cut)); }, 50);
    });
    return new Promise((resolve) => server.listen(socket, () => resolve({
      socket, close: () => new Promise<void>((r) => server.close(() => r())),
    })));
  };

  it('vsw events: a non-ASCII command split across two chunks prints whole', async () => {
    const ev = { time: '2026-01-01T00:00:00.000Z', type: 'container-start', container: 'c1', mode: 'bridge', cmd: 'echo héllo ✓' };
    const srv = await splitServer(JSON.stringify(ev));
    try {
      const r = await vsw(['events'], { socket: srv.socket });
      expect([r.code, r.stdout, r.stderr]).toEqual([0, '2026-01-01T00:00:00.000Z container-start container=c1 mode=bridge cmd=echo héllo ✓\n', '']);
      const j = await vsw(['events', '--format', 'json'], { socket: srv.socket });
      expect(JSON.parse(j.stdout)).toEqual(ev);
    } finally {
      await srv.close();
    }
  });

  it('vsw trace --format json: a record split inside a character comes out as sent', async () => {
    const rec = { frame: 'frame naïve', steps: [], verdict: { kind: 'drop', ports: [], reason: 'runt' }, port: 'vsw0 (host)' };
    const srv = await splitServer(JSON.stringify(rec));
    try {
      const r = await vsw(['trace', '--format', 'json'], { socket: srv.socket });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${JSON.stringify(rec)}\n`);
    } finally {
      await srv.close();
    }
  });
});

describe('impair', () => {
  it('set sends the options as given and prints the settings; ls as a table and json; rm', async () => {
    engine.portStats = [{ id: 1, name: 'vsw0a1b2c3d', network: 'bridge', container: 'web', rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, drops: {} }];
    const r = await vsw(['impair', 'set', 'vsw0a1b2c3d', '--delay', '20ms', '--jitter', '5ms', '--loss', '1%', '--seed', '7']);
    expect([r.code, r.stdout, r.stderr]).toEqual([0, 'vsw0a1b2c3d out: delay 20ms jitter 5ms uniform loss 1% (seed 7)\n', '']);
    expect(engine.calls).toContainEqual(['impairSet', { port: 'vsw0a1b2c3d', direction: 'out', delay: '20ms', jitter: '5ms', loss: '1%', seed: 7 }]);
    const t = (await vsw(['impair', 'ls'])).stdout.trimEnd().split('\n');
    expect(t[0].split(/\s{2,}/)).toEqual(['PORT', 'NETWORK', 'CONTAINER', 'DIRECTION', 'SEED', 'SETTINGS']);
    expect(t[1].split(/\s{3,}/)).toEqual(['vsw0a1b2c3d', 'bridge', '-', 'out', '7', 'delay 20ms jitter 5ms uniform loss 1%']);
    expect(JSON.parse((await vsw(['impair', 'ls', '--format', 'json'])).stdout)[0].spec).toMatchObject({ delay: 20, loss: 0.01 });
    expect(await vsw(['impair', 'rm', 'vsw0a1b2c3d'])).toMatchObject({ code: 0, stdout: 'vsw0a1b2c3d\n' });
    expect(await vsw(['impair', 'rm', 'vsw0a1b2c3d'])).toMatchObject({ code: 1, stderr: "vsw: port 'vsw0a1b2c3d' is not impaired\n" });
  });

  it('bad values are usage errors that say what was expected, and nothing is sent', async () => {
    const r = await vsw(['impair', 'set', 'web', '--rate', '10 furlongs']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--rate <bits>' argument '10 furlongs' is invalid\. Rate '10 furlongs': expected a rate like 10mbit/);
    const d = await vsw(['impair', 'set', 'web', '--direction', 'sideways', '--delay', '1ms']);
    expect(d.code).toBe(2);
    const combo = await vsw(['impair', 'set', 'web', '--reorder', '10%']);
    expect([combo.code, combo.stderr]).toEqual([1, 'vsw: --reorder sends some frames at once and delays the others: give --delay too\n']);
    expect(engine.impairs.size).toBe(0);
  });
});
