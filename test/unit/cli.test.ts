// The `vsw` CLI as a user runs it: a child process (compiled JS) against the real API server
// backed by the in-memory FakeEngine.
//
// Build: only the CLI and what it imports (control/cli.ts -> client, errors, format, types)
// are compiled, into a temp dir, so that other modules being worked on cannot break this
// test. Node finds `commander` through NODE_PATH. The child is spawned asynchronously (never
// spawnSync): the API server it talks to runs in this process's event loop.

import { execFileSync, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startApi, type ApiServer } from '../../control/api';
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
  try {
    execFileSync(process.execPath, [tsc,
      '--outDir', outDir, '--rootDir', REPO, '--module', 'commonjs', '--moduleResolution', 'node',
      '--target', 'ES2022', '--lib', 'ES2022', '--types', 'node', '--strict', '--esModuleInterop',
      '--skipLibCheck', path.join(REPO, 'control', 'cli.ts')], { cwd: REPO, stdio: 'pipe' });
  } catch (e) {
    throw new Error(`compiling the CLI failed:\n${(e as { stdout?: Buffer }).stdout?.toString()}`);
  }
  cliJs = path.join(outDir, 'control', 'cli.js');
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
    for (const c of ['network', 'run', 'exec', 'ps', 'rm', 'fdb', 'stats', 'daemon']) {
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
    expect(lines[0].split(/\s{2,}/)).toEqual(['NAME', 'ID', 'SUBNET', 'GATEWAY', 'MTU', 'ENDPOINTS', 'DEFAULT']);
    expect(lines[1].split(/\s+/)).toEqual(['bridge', '0', '172.17.0.0/16', '172.17.0.1', '1500', '0', 'yes']);
    expect(lines[2].split(/\s+/)).toEqual(['jumbo', '1', '10.20.0.0/24', '10.20.0.1', '9000', '0', 'no']);
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
    expect(overlap.stderr).toMatch(/^vsw: subnet 10.30.5.0\/24 overlaps 10.30.0.0\/16 of network n1\n$/);
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
    expect(lines[0].split(/\s{2,}/)).toEqual(['NAME', 'ID', 'NETWORK', 'IP', 'MAC', 'STATUS', 'COMMAND']);
    expect(lines[1]).toMatch(/^web\s+[0-9a-f]{12}\s+bridge\s+172\.17\.0\.2\s+02:42:ac:11:00:02\s+running\s+sleep 1000$/);
    expect(lines[2]).toMatch(/^db\s+[0-9a-f]{12}\s+n1\s+10\.50\.0\.5\s+\S+\s+exited \(3\)\s+-$/);
    expect(lines[3]).toMatch(/^h\s+[0-9a-f]{12}\s+host\s+-\s+-\s+created\s+-$/);
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
    expect(outside.stderr).toMatch(/^vsw: IP 192\.168\.9\.9 is not a usable address/);
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

  it('parses its options into DaemonOptions and calls runDaemon', async () => {
    // A stand-in control/daemon.js next to the compiled CLI that prints what it was given.
    const copy = path.join(tmp, 'dist-daemon');
    fs.cpSync(outDir, copy, { recursive: true });
    fs.writeFileSync(path.join(copy, 'control', 'daemon.js'),
      'exports.runDaemon = async (o) => { process.stdout.write(JSON.stringify(o)); setInterval(() => {}, 1000); };\n');
    const run = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> => new Promise((resolve) => {
      const e = { ...process.env, NODE_PATH: path.join(REPO, 'node_modules'), ...env };
      if (!('VSW_SOCKET' in env)) delete e.VSW_SOCKET;
      const child = spawn(process.execPath, [path.join(copy, 'control', 'cli.js'), ...args], { env: e });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c) => { stdout += c; });
      child.stderr.on('data', (c) => { stderr += c; });
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    });
    const d = await run(['daemon']);
    // exits once runDaemon resolves, even with a stray timer left behind
    expect([d.code, d.stderr]).toEqual([0, '']);
    expect(JSON.parse(d.stdout)).toEqual({
      stateDir: '/var/lib/vsw', socket: '/run/vsw/vsw.sock', workers: 2, defaultNetwork: 'bridge',
      fdbAgingSeconds: 300, fdbMax: 16384, fdbMaxPerPort: 4096,
    });
    const d2 = await run(['--socket', '/g.sock', 'daemon', '--state-dir', '/s', '--workers', '4', '--default-subnet', '10.99.0.0/16',
      '--default-network', 'br0', '--fdb-aging', '60', '--fdb-max', '1000', '--fdb-max-per-port', '10']);
    expect(JSON.parse(d2.stdout)).toEqual({
      stateDir: '/s', socket: '/g.sock', workers: 4, defaultSubnet: '10.99.0.0/16', defaultNetwork: 'br0',
      fdbAgingSeconds: 60, fdbMax: 1000, fdbMaxPerPort: 10,
    });
    expect(JSON.parse((await run(['daemon'], { VSW_SOCKET: '/env.sock' })).stdout).socket).toBe('/env.sock');
    expect(JSON.parse((await run(['--socket', '/g.sock', 'daemon', '--socket', '/d.sock'], { VSW_SOCKET: '/env.sock' })).stdout).socket).toBe('/d.sock');
  });
});
