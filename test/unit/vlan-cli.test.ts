// 802.1Q from the user's side: VLAN lists (control/vlan.ts), `network create --vlan`,
// `vsw trunk add/rm/ls`, `daemon --uplink-vlan` usage errors, and the /trunks API route,
// against the real API server backed by the FakeEngine (the CLI compiled into a temp dir,
// as in cli.test.ts).

import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startApi, type ApiServer } from '../../control/api';
import type { NetworkInfo, TrunkInfo } from '../../control/types';
import { checkVlanRanges, formatVlanSet, inVlanSet, parseVlanSet } from '../../control/vlan';
import { FakeEngine } from '../fixtures/fake-engine';

const REPO = path.resolve(__dirname, '..', '..');
let tmp: string;
let cliJs: string;
let sock: string;
let engine: FakeEngine;
let api: ApiServer | undefined;

interface Result { code: number | null; stdout: string; stderr: string }

function vsw(args: string[]): Promise<Result> {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_PATH: path.join(REPO, 'node_modules') };
  delete env.VSW_SOCKET;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliJs, '--socket', sock, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => { stdout += c; });
    child.stderr.on('data', (c) => { stderr += c; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function request(method: string, p: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: sock, method, path: p, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vsw-vlan-cli-'));
  const outDir = path.join(tmp, 'dist');
  cliJs = path.join(outDir, 'control', 'cli.js');
  const tsc = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    execFileSync(process.execPath, [tsc,
      '--outDir', outDir, '--rootDir', REPO, '--module', 'commonjs', '--moduleResolution', 'node',
      '--target', 'ES2022', '--lib', 'ES2022', '--types', 'node', '--strict', '--esModuleInterop',
      '--skipLibCheck', path.join(REPO, 'control', 'cli.ts')], { cwd: REPO, stdio: 'pipe' });
  } catch (e) {
    const out = (e as { stdout?: Buffer }).stdout?.toString() ?? String(e);
    const ours = out.split('\n').filter((l) => /^\S+\(\d+,\d+\): error/.test(l) && !/^(dataplane|workers)\//.test(l));
    if (ours.length > 0 || !fs.existsSync(cliJs)) throw new Error(`compiling the CLI failed:\n${out}`);
  }
  sock = path.join(tmp, 'vsw.sock');
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

describe('VLAN lists', () => {
  it('parses ids and ranges, sorted and merged', () => {
    expect(parseVlanSet('10,20,30-40')).toEqual([[10, 10], [20, 20], [30, 40]]);
    expect(parseVlanSet(' 20 , 10-12,11,13')).toEqual([[10, 13], [20, 20]]);
    expect(parseVlanSet('1-4094')).toEqual([[1, 4094]]);
    expect(formatVlanSet(parseVlanSet('40,30-39,5'))).toBe('5,30-40');
    expect(inVlanSet(parseVlanSet('10,30-40'), 35)).toBe(true);
    expect(inVlanSet(parseVlanSet('10,30-40'), 20)).toBe(false);
  });

  it('refuses what is not a VLAN list', () => {
    for (const bad of ['', '10,,20', '0', '4095', '40-30', 'ten', '10-', '-5', '1.5', '10 20']) {
      expect(() => parseVlanSet(bad), bad).toThrow(/invalid VLAN list/);
    }
    expect(() => checkVlanRanges([[10, 5]])).toThrow(/backwards/);
    expect(() => checkVlanRanges([])).toThrow();
    expect(checkVlanRanges([[20, 30], [10, 10]])).toEqual([[10, 10], [20, 30]]);
  });
});

describe('vsw network create --vlan', () => {
  it('sends the VLAN; network ls shows vlan=ID in FLAGS; inspect has it', async () => {
    expect((await vsw(['network', 'create', '--vlan', '10', 'v10'])).stdout).toBe('v10\n');
    expect(engine.calls).toContainEqual(['createNetwork', { name: 'v10', vlan: 10 }]);
    await vsw(['network', 'create', '--vlan', '20', '--internal', 'v20']);
    const ls = (await vsw(['network', 'ls'])).stdout.trimEnd().split('\n');
    expect(ls.find((l) => l.startsWith('v10'))!.split(/\s+/).pop()).toBe('vlan=10');
    expect(ls.find((l) => l.startsWith('v20'))!.split(/\s+/).pop()).toBe('vlan=20,internal');
    expect(ls.find((l) => l.startsWith('bridge'))!.split(/\s+/).pop()).toBe('-');
    const info = JSON.parse((await vsw(['network', 'inspect', 'v10'])).stdout) as NetworkInfo;
    expect(info.vlan).toBe(10);
    const bridge = JSON.parse((await vsw(['network', 'inspect', 'bridge'])).stdout) as NetworkInfo;
    expect(bridge.vlan).toBe(0);
  });

  it('a VLAN id outside 1-4094 is a usage error; a VLAN already used is refused by the daemon', async () => {
    for (const v of ['0', '4095', 'x', '-3']) {
      const r = await vsw(['network', 'create', '--vlan', v, 'n']);
      expect(r.code, v).toBe(2);
      expect(r.stderr).toMatch(/--vlan <id>/);
    }
    expect(engine.calls.filter((c) => c[0] === 'createNetwork')).toEqual([]);
    await vsw(['network', 'create', '--vlan', '10', 'a']);
    const r = await vsw(['network', 'create', '--vlan', '10', 'b']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/VLAN 10 is already network 'a'/);
  });
});

describe('vsw trunk', () => {
  it('add sends the device, the normalized VLAN list, the native VLAN and --tap; prints the device', async () => {
    const r = await vsw(['trunk', 'add', 'eth1', '--vlans', '30-40,20,10', '--native', '30']);
    expect(r).toMatchObject({ code: 0, stdout: 'eth1\n' });
    expect(engine.calls).toContainEqual(['addTrunk', { device: 'eth1', vlans: '10,20,30-40', native: 30 }]);
    await vsw(['trunk', 'add', '--tap', 'vtrunk0']);
    expect(engine.calls).toContainEqual(['addTrunk', { device: 'vtrunk0', tap: true }]);
  });

  it('usage errors exit 2 and reach nothing', async () => {
    const cases: [string[], RegExp][] = [
      [['trunk', 'add', 'eth1', '--vlans', '40-30'], /the range 40-30 is backwards/i],
      [['trunk', 'add', 'eth1', '--vlans', '10,,20'], /expected ids and ranges like 10,20,30-40/i],
      [['trunk', 'add', 'eth1', '--vlans', '4095'], /4095 is not a VLAN id/],
      [['trunk', 'add', 'eth1', '--native', '0'], /Must be from 1 to 4094/],
      [['trunk', 'add', 'a/b'], /Expected an interface name/],
      [['trunk', 'add', 'abcdefghijklmnop'], /Expected an interface name/],
      [['trunk', 'add'], /missing required argument 'dev'/],
      [['trunk', 'frob'], /unknown command 'frob'/],
      [['daemon', '--uplink-vlan', '5'], /--uplink-vlan needs --uplink DEV/],
      [['daemon', '--uplink', 'eth0', '--uplink-ip', '198.51.100.2/24', '--uplink-gateway', '198.51.100.1', '--uplink-vlan', '4095'], /Must be from 1 to 4094/],
    ];
    for (const [args, msg] of cases) {
      const r = await vsw(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(msg);
    }
    expect(engine.calls).toEqual([]);
  });

  it('ls: a table (NETWORKS NAME:VID, (u) untagged) and JSON; rm prints each device; errors exit 1', async () => {
    await vsw(['network', 'create', '--vlan', '10', 'v10']);
    await vsw(['network', 'create', '--vlan', '30', 'v30']);
    await vsw(['trunk', 'add', 'eth1', '--native', '30']);
    const lines = (await vsw(['trunk', 'ls'])).stdout.trimEnd().split('\n');
    expect(lines[0].split(/\s{2,}/)).toEqual(['DEVICE', 'KIND', 'VLANS', 'NATIVE', 'NETWORKS', 'STATUS']);
    expect(lines[1].split(/\s+/)).toEqual(['eth1', 'afpacket', 'all', '30', 'v10:10,v30:30(u)', 'up']);
    const json = JSON.parse((await vsw(['trunk', 'ls', '--format', 'json'])).stdout) as TrunkInfo[];
    expect(json).toMatchObject([{ device: 'eth1', kind: 'afpacket', vlans: 'all', native: 30, status: 'up' }]);
    expect((await vsw(['trunk', 'rm', 'eth1'])).stdout).toBe('eth1\n');
    const gone = await vsw(['trunk', 'rm', 'eth1']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/no trunk 'eth1'/);
    const missing = await vsw(['trunk', 'add', 'missing0']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no interface 'missing0'/);
  });

  it('the /trunks API: fields checked, 201 / 204, methods', async () => {
    expect(await request('POST', '/trunks', { device: 'eth2', vlan: 10 })).toMatchObject({ status: 400 });
    expect(await request('POST', '/trunks', { device: 'eth2', native: 'x' })).toMatchObject({ status: 400 });
    expect(await request('POST', '/trunks', { device: 'eth2', vlans: '10' })).toMatchObject({ status: 201, json: { device: 'eth2', vlans: '10' } });
    expect(await request('GET', '/trunks')).toMatchObject({ status: 200, json: [{ device: 'eth2' }] });
    expect((await request('PUT', '/trunks/eth2')).status).toBe(405);
    expect((await request('DELETE', '/trunks/eth2')).status).toBe(204);
    expect((await request('DELETE', '/trunks/eth2')).status).toBe(404);
    expect((await request('POST', '/networks', { name: 'n', vlan: 'ten' })).status).toBe(400);
  });
});
