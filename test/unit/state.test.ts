import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConflictError, VswError } from '../../control/errors';
import { STATE_VERSION, StateStore } from '../../control/state';

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
