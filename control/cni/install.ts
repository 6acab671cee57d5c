// `vsw cni install DIR`: put vsw-cni into a CNI plugin directory as `vsw`, so that a
// conflist says "type": "vsw". What is written is a small /bin/sh launcher that execs this
// node with the absolute path of dist/control/cni/main.js: it works from any filesystem
// (no symlink into node_modules to dangle, no copy of the package), and when the package
// has moved it answers the runtime with a CNI error saying to run the install again.
// The file is written next to its final name and renamed: a runtime never sees half of it.

import * as fs from 'fs';
import * as path from 'path';
import { InvalidArgumentError, SystemError } from '../errors';

/** The line that marks a launcher of ours (an existing file without it is not replaced). */
export const LAUNCHER_MARK = '# vsw CNI plugin launcher, written by `vsw cni install`';

/** Where the plugin's entry is in this package (dist/control/cni/main.js). */
export function pluginEntry(): string {
  return path.join(__dirname, 'main.js');
}

function shQuote(s: string): string {
  return `'${s.replace(/'/g, "'\\''")}'`;
}

/** The launcher's text for this node and entry. */
export function launcherText(node: string, entry: string): string {
  const moved = JSON.stringify({ cniVersion: '1.0.0', code: 5, msg: `vsw-cni is no longer at ${entry}: run \`vsw cni install\` again` });
  return `#!/bin/sh
${LAUNCHER_MARK}
# (vsw-cni: ${entry}); run the install again after moving or upgrading vsw.
if [ ! -f ${shQuote(entry)} ] || [ ! -x ${shQuote(node)} ]; then
  printf '%s\\n' ${shQuote(moved)}
  exit 1
fi
exec ${shQuote(node)} ${shQuote(entry)} "$@"
`;
}

export interface InstallResult {
  path: string;
  replaced: boolean;
}

/** Write DIR/NAME (default `vsw`). force: replace a file that is not a vsw launcher. */
export function installPlugin(dir: string, opts: { name?: string; force?: boolean; node?: string; entry?: string } = {}): InstallResult {
  const name = opts.name ?? 'vsw';
  if (name === '' || name.includes('/') || name === '.' || name === '..') {
    throw new InvalidArgumentError(`invalid plugin name '${name}': a file name, e.g. vsw`);
  }
  const abs = path.resolve(dir);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new InvalidArgumentError(`${abs} does not exist: create the CNI plugin directory first (e.g. mkdir -p ${abs})`);
  }
  if (!st.isDirectory()) throw new InvalidArgumentError(`${abs} is not a directory`);
  const entry = opts.entry ?? pluginEntry();
  if (!fs.existsSync(entry)) throw new SystemError(`${entry} is missing: build vsw first (npm run build)`);
  const target = path.join(abs, name);
  let replaced = false;
  if (fs.existsSync(target) || isLink(target)) {
    let mine = false;
    try { mine = fs.readFileSync(target, 'utf8').includes(LAUNCHER_MARK); } catch { /* unreadable: not ours */ }
    if (!mine && !opts.force) {
      throw new InvalidArgumentError(`${target} exists and is not a vsw launcher (another plugin named '${name}'?): use --force to replace it, or --name`);
    }
    replaced = true;
  }
  const tmp = path.join(abs, `.${name}.vsw-install-${process.pid}`);
  try {
    fs.writeFileSync(tmp, launcherText(opts.node ?? process.execPath, entry), { mode: 0o755 });
    fs.chmodSync(tmp, 0o755);
    fs.renameSync(tmp, target);
  } catch (e) {
    try { fs.rmSync(tmp, { force: true }); } catch { /* nothing to remove */ }
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      throw new SystemError(`cannot write ${target}: ${code === 'EROFS' ? 'read-only filesystem' : 'permission denied (run as root?)'}`);
    }
    throw new SystemError(`cannot write ${target}: ${(e as Error).message}`);
  }
  return { path: target, replaced };
}

function isLink(p: string): boolean {
  try { return fs.lstatSync(p).isSymbolicLink(); } catch { return false; }
}
