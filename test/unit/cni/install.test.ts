// `vsw cni install DIR`: the launcher it writes runs the plugin, says so when the package
// has moved, and an existing file that is not ours is kept unless --force.

import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installPlugin, LAUNCHER_MARK } from '../../../control/cni/install';

let tmp: string;
let entry: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vsw-cni-install-'));
  // A stand-in for dist/control/cni/main.js: prints its argv and CNI_COMMAND.
  entry = path.join(tmp, "it's main.js");
  fs.writeFileSync(entry, 'process.stdout.write(JSON.stringify({ argv: process.argv.slice(2), cmd: process.env.CNI_COMMAND }))');
});
afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

function runLauncher(file: string): { code: number | null; out: unknown } {
  const r = spawnSync(file, ['x y'], { env: { ...process.env, CNI_COMMAND: 'VERSION' }, encoding: 'utf8', timeout: 10_000 });
  return { code: r.status, out: JSON.parse(r.stdout) };
}

describe('vsw cni install', () => {
  it('writes an executable launcher that runs the plugin with its arguments and environment', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'bin-'));
    const r = installPlugin(dir, { entry });
    expect(r).toEqual({ path: path.join(dir, 'vsw'), replaced: false });
    expect(fs.statSync(r.path).mode & 0o111).toBe(0o111);
    expect(runLauncher(r.path)).toEqual({ code: 0, out: { argv: ['x y'], cmd: 'VERSION' } });
    expect(fs.readdirSync(dir)).toEqual(['vsw']);
    // Again: our own launcher is replaced.
    expect(installPlugin(dir, { entry }).replaced).toBe(true);
  });

  it('a launcher whose package moved answers with a CNI error saying what to do', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'bin-'));
    const gone = path.join(tmp, 'moved.js');
    fs.writeFileSync(gone, '');
    const r = installPlugin(dir, { entry: gone, name: 'vsw-moved' });
    fs.rmSync(gone);
    const res = spawnSync(r.path, [], { encoding: 'utf8', timeout: 10_000 });
    expect(res.status).toBe(1);
    expect(JSON.parse(res.stdout)).toMatchObject({ cniVersion: '1.0.0', code: 5, msg: expect.stringMatching(/no longer at .*moved\.js: run `vsw cni install` again/) });
  });

  it('keeps a file that is not a vsw launcher unless forced', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'bin-'));
    fs.writeFileSync(path.join(dir, 'vsw'), '#!/bin/sh\necho other\n', { mode: 0o755 });
    expect(() => installPlugin(dir, { entry })).toThrow(/exists and is not a vsw launcher.*--force/);
    expect(fs.readFileSync(path.join(dir, 'vsw'), 'utf8')).toContain('echo other');
    expect(installPlugin(dir, { entry, force: true }).replaced).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'vsw'), 'utf8')).toContain(LAUNCHER_MARK);
  });

  it('refuses a directory that does not exist, and a name that is a path', () => {
    expect(() => installPlugin(path.join(tmp, 'nope'), { entry })).toThrow(/does not exist: create the CNI plugin directory first/);
    expect(() => installPlugin(tmp, { entry, name: '../x' })).toThrow(/invalid plugin name/);
  });
});
