import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConflictError, VswError } from '../../control/errors';
import { STATE_VERSION, StateStore } from '../../control/state';
import { checkState } from '../../control/engine/records';

interface S {
  networks: { name: string; subnet: string }[];
  n: number;
}

let tmp: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vsw-state-test-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('StateStore', () => {
  it('creates the dir 0700 and loads undefined when nothing was saved', () => {
    const dir = path.join(tmp, 'a', 'b');
    const st = new StateStore<S>(dir);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    expect(st.load()).toBeUndefined();
  });

  it('round-trips, with a version field', () => {
    const st = new StateStore<S>(tmp);
    const s: S = { networks: [{ name: 'bridge', subnet: '10.89.0.0/24' }], n: 1 };
    st.save(s);
    expect(new StateStore<S>(tmp).load()).toEqual(s);
    const raw = JSON.parse(fs.readFileSync(path.join(tmp, 'state.json'), 'utf8'));
    expect(raw.version).toBe(STATE_VERSION);
    expect(fs.existsSync(path.join(tmp, 'state.json.tmp'))).toBe(false);
    st.save({ ...s, n: 2 });
    expect(st.load()?.n).toBe(2);
  });

  it('a leftover .tmp with garbage does not hurt, and is removed', () => {
    const st = new StateStore<S>(tmp);
    st.save({ networks: [], n: 7 });
    fs.writeFileSync(path.join(tmp, 'state.json.tmp'), '{"version": 1, "sta');
    expect(st.load()).toEqual({ networks: [], n: 7 });
    expect(fs.existsSync(path.join(tmp, 'state.json.tmp'))).toBe(false);
    // Only a .tmp (crash during the very first save): no state yet.
    fs.rmSync(path.join(tmp, 'state.json'));
    fs.writeFileSync(path.join(tmp, 'state.json.tmp'), 'garbage');
    expect(st.load()).toBeUndefined();
  });

  it('a corrupt state.json is a clear error naming the file', () => {
    const st = new StateStore<S>(tmp);
    const file = path.join(tmp, 'state.json');
    fs.writeFileSync(file, '{"version": 1, "state": {"n": ');
    expect(() => st.load()).toThrow(VswError);
    expect(() => st.load()).toThrow(`state file ${file} is corrupt`);
    fs.writeFileSync(file, '[1, 2]');
    expect(() => st.load()).toThrow(/corrupt/);
    fs.writeFileSync(file, '{"version": 99, "state": {}}');
    expect(() => st.load()).toThrow(/version 99/);
  });

  it('lock: conflicts with a live pid, takes over a dead one, unlock removes it', async () => {
    const st = new StateStore<S>(tmp);
    const lockFile = path.join(tmp, 'lock');

    const sleeper = spawn('sleep', ['5'], { stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => sleeper.on('exit', () => resolve()));
    try {
      expect(sleeper.pid).toBeGreaterThan(0);
      fs.writeFileSync(lockFile, `${sleeper.pid}\n`);
      expect(() => st.lock()).toThrow(ConflictError);
      expect(() => st.lock()).toThrow(`another vsw daemon (pid ${sleeper.pid}) uses state dir ${tmp}`);
      expect(fs.readFileSync(lockFile, 'utf8').trim()).toBe(String(sleeper.pid));
    } finally {
      sleeper.kill('SIGKILL');
      await exited;
    }

    // The holder is dead now: take the lock over.
    st.lock();
    expect(fs.readFileSync(lockFile, 'utf8').trim()).toBe(String(process.pid));
    st.lock(); // ours already: fine
    st.unlock();
    expect(fs.existsSync(lockFile)).toBe(false);

    // Garbage in the lock file counts as stale.
    fs.writeFileSync(lockFile, 'not a pid');
    st.lock();
    expect(fs.readFileSync(lockFile, 'utf8').trim()).toBe(String(process.pid));
    st.unlock();
  });

  it('unlock leaves somebody else’s lock alone', () => {
    const st = new StateStore<S>(tmp);
    fs.writeFileSync(path.join(tmp, 'lock'), '1\n');
    st.unlock();
    expect(fs.existsSync(path.join(tmp, 'lock'))).toBe(true);
  });
});

describe('StateStore with the engine\'s shape check (checkState)', () => {
  const good = (): Record<string, unknown> => ({
    networks: [{
      name: 'bridge', id: 0, subnet: '10.89.0.0/24', gateway: '10.89.0.1', ipRange: '10.89.0.0/24', mtu: 1500,
      default: true, created: '2026-01-01T00:00:00.000Z', tap: 'vsw0',
    }],
    containers: [{
      name: 'c1', id: 'abcdef012345', mode: 'bridge', netns: 'c1',
      endpoints: [{ network: 'bridge', ip: '10.89.0.2', mac: '02:42:0a:59:00:02', hostIf: 'vsw01234567', innerIf: 'eth0', aliases: ['web'] }],
      cmd: ['sleep', '600'], detach: true, rm: false, status: 'running', pid: 42, created: '2026-01-01T00:00:00.000Z',
      ports: [{ hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, proto: 'tcp' }], links: [],
    }],
    trunks: [{ device: 'eth9', kind: 'afpacket', vlans: [[10, 20]], created: '2026-01-01T00:00:00.000Z' }],
  });
  const write = (state: unknown): string => {
    const file = path.join(tmp, 'state.json');
    fs.writeFileSync(file, `${JSON.stringify({ version: STATE_VERSION, savedAt: 'x', state }, null, 2)}\n`);
    return file;
  };

  it('loads a well-formed state, and one written before the optional fields existed', () => {
    write(good());
    expect(new StateStore(tmp, checkState).load()).toEqual(good());
    const old = good();
    delete old.trunks;
    (old.containers as Record<string, unknown>[])[0].ports = undefined;
    write(old);
    expect(() => new StateStore(tmp, checkState).load()).not.toThrow();
  });

  const bad: [string, (s: Record<string, any>) => unknown, string][] = [
    ['networks is a string', (s) => { s.networks = 'x'; }, "networks: expected an array, got string 'x'"],
    ['containers missing', (s) => { delete s.containers; }, 'containers: missing'],
    ['a network id is text', (s) => { s.networks[0].id = '0'; }, "networks[0].id: expected an integer, got string '0'"],
    ['a subnet is a number', (s) => { s.networks[0].subnet = 10; }, 'networks[0].subnet: expected a string, got number'],
    ['an mtu is fractional', (s) => { s.networks[0].mtu = 1500.5; }, 'networks[0].mtu: expected an integer, got 1500.5'],
    ['an unknown mode', (s) => { s.containers[0].mode = 'bridged'; }, "containers[0].mode: expected one of bridge, none, host, container, docker, cni, got string 'bridged'"],
    ['endpoints is an object', (s) => { s.containers[0].endpoints = {}; }, 'containers[0].endpoints: expected an array, got an object'],
    ['an endpoint is null', (s) => { s.containers[0].endpoints = [null]; }, 'containers[0].endpoints[0]: expected an object, got null'],
    ['an alias is a number', (s) => { s.containers[0].endpoints[0].aliases = [7]; }, 'containers[0].endpoints[0].aliases[0]: expected a string, got number'],
    ['cmd is a string', (s) => { s.containers[0].cmd = 'sleep 600'; }, "containers[0].cmd: expected an array, got string 'sleep 600'"],
    ['a published port proto', (s) => { s.containers[0].ports[0].proto = 'sctp'; }, "containers[0].ports[0].proto: expected one of tcp, udp, got string 'sctp'"],
    ['trunks is a number', (s) => { s.trunks = 3; }, 'trunks: expected an array, got number'],
    ['the state is an array', () => [], 'state: expected an object, got an array'],
    ['the state is null', () => null, 'state: expected an object, got null'],
    ['a name twice', (s) => { s.networks.push({ ...s.networks[0], id: 1 }); }, "networks[1].name: 'bridge' appears twice"],
  ];
  it.each(bad)('%s: a VswError naming the file and the field; the file is left byte for byte', (_what, spoil, why) => {
    const s = good();
    const replaced = spoil(s);
    const file = write(replaced === undefined ? s : replaced);
    const before = fs.readFileSync(file);
    const st = new StateStore(tmp, checkState);
    expect(() => st.load()).toThrow(VswError);
    expect(() => st.load()).toThrow(`state file ${file}: ${why}; repair it or move it away to start from empty state`);
    expect(fs.readFileSync(file).equals(before)).toBe(true);
  });
});
