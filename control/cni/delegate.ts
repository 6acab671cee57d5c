// Delegation to an IPAM plugin (the config's `ipam.type`, e.g. the reference host-local):
// found in CNI_PATH, run with the same environment (CNI_COMMAND included) and the same
// network configuration on stdin, as the spec's "delegated plugin" protocol says. Its error
// JSON is passed on with its own code; a plugin that cannot be found is a configuration
// error (7); one that cannot be run or answers something unusable is vsw's 107.

import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { CNI_ERR, CniError, parseResult, type CniResult } from './spec';

/** How long an IPAM plugin may take (host-local takes milliseconds; dhcp can wait for a lease). */
const IPAM_TIMEOUT_MS = 60_000;

/** The plugin's path: the first CNI_PATH directory holding an executable `type`. */
export function findPlugin(type: string, dirs: string[]): string {
  for (const d of dirs) {
    const p = path.join(d, type);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch { /* not here */ }
  }
  throw new CniError(CNI_ERR.INVALID_CONFIG, `the IPAM plugin '${type}' is not in CNI_PATH (${dirs.join(':')})`);
}

export interface DelegateRun {
  type: string;
  command: 'ADD' | 'DEL' | 'CHECK';
  dirs: string[];
  env: NodeJS.ProcessEnv;
  stdin: string;
}

/** Run the IPAM plugin; resolves with its stdout when it succeeds. */
function runPlugin(r: DelegateRun): Promise<string> {
  const file = findPlugin(r.type, r.dirs);
  const who = `the IPAM plugin '${r.type}' (${file})`;
  return new Promise<string>((resolve, reject) => {
    const child = execFile(file, [], {
      env: { ...r.env, CNI_COMMAND: r.command },
      encoding: 'utf8', timeout: IPAM_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 4 * 1024 * 1024,
    }, (err, stdout, stderr) => {
      if (!err) { resolve(stdout); return; }
      const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string | null };
      if (e.killed) { reject(new CniError(CNI_ERR.VSW_IPAM, `${who} did not finish ${r.command} within ${IPAM_TIMEOUT_MS / 1000} s`)); return; }
      let parsed: { code?: unknown; msg?: unknown; details?: unknown } | undefined;
      try { parsed = JSON.parse(stdout) as typeof parsed; } catch { /* not the error JSON */ }
      if (parsed && typeof parsed.code === 'number' && typeof parsed.msg === 'string') {
        reject(new CniError(parsed.code, `${who}: ${parsed.msg}`, typeof parsed.details === 'string' ? parsed.details : ''));
        return;
      }
      const why = (stderr || stdout).trim() || (typeof e.code === 'number' ? `exit status ${e.code}` : e.message);
      reject(new CniError(CNI_ERR.VSW_IPAM, `${who} failed ${r.command}: ${why}`));
    });
    child.stdin?.on('error', () => { /* the plugin did not read its stdin: its exit says why */ });
    child.stdin?.end(r.stdin);
  });
}

/** ADD: the addresses (and routes, DNS) the IPAM plugin allocated. */
export async function ipamAdd(r: Omit<DelegateRun, 'command'>): Promise<CniResult> {
  const out = await runPlugin({ ...r, command: 'ADD' });
  let v: unknown;
  try {
    v = JSON.parse(out);
  } catch {
    throw new CniError(CNI_ERR.VSW_IPAM, `the IPAM plugin '${r.type}' answered ADD with something that is not JSON: ${out.slice(0, 200)}`);
  }
  return parseResult(v, `the IPAM plugin '${r.type}''s result`);
}

export async function ipamDel(r: Omit<DelegateRun, 'command'>): Promise<void> {
  await runPlugin({ ...r, command: 'DEL' });
}

export async function ipamCheck(r: Omit<DelegateRun, 'command'>): Promise<void> {
  await runPlugin({ ...r, command: 'CHECK' });
}
