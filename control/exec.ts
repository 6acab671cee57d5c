// Run a system command (no shell) and turn every failure into a SystemError whose message
// is the command line plus the command's own complaint, e.g.
//   ip link add vswab12cd34 type veth ...: RTNETLINK answers: File exists
// Also: small process helpers (pidAlive) shared by netns.ts and state.ts.

import { execFile } from 'child_process';
import * as fs from 'fs';
import { SystemError } from './errors';

export interface RunOptions {
  /** Written to the command's stdin (then stdin is closed). */
  input?: string;
  /** Kill the command (SIGKILL) after this many ms. Default 10 000. */
  timeoutMs?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

export const DEFAULT_TIMEOUT_MS = 10_000;

/** `cmd arg1 arg2`, with arguments that need it quoted (for messages only). */
export function commandLine(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => (a === '' || /[^\w@%+=:,./-]/.test(a) ? JSON.stringify(a) : a)).join(' ');
}

/**
 * Run `cmd args...` without a shell. Resolves with stdout/stderr when it exits 0;
 * otherwise rejects with a SystemError "<command line>: <trimmed stderr>" (or the exit
 * status / signal / timeout / spawn error when stderr is empty).
 */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise<RunResult>((resolve, reject) => {
    const child = execFile(
      cmd,
      args as string[],
      { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, windowsHide: true },
      (err, stdout, stderr) => {
        if (!err) {
          resolve({ stdout, stderr });
          return;
        }
        const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string | null; code?: unknown };
        let why = (stderr ?? '').trim();
        if (!why) {
          if (e.code === 'ENOENT') why = `command not found: ${cmd}`;
          else if (e.code === 'EACCES') why = `permission denied: ${cmd}`;
          else if (e.killed && e.signal) why = `timed out after ${timeoutMs} ms`;
          else if (e.signal) why = `killed by ${e.signal}`;
          else if (typeof e.code === 'number') why = `exited with status ${e.code}`;
          else if (e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') why = 'output too large';
          else why = e.message;
        } else if (e.killed && e.signal) {
          why += ` (timed out after ${timeoutMs} ms)`;
        }
        reject(new SystemError(`${commandLine(cmd, args)}: ${why}`));
      },
    );
    if (child.stdin) {
      // A command that exits without reading its input would otherwise give EPIPE.
      child.stdin.on('error', () => undefined);
      child.stdin.end(opts.input ?? '');
    }
  });
}

/** Run a command that prints JSON (e.g. `ip -j ...`) and parse it. Empty output -> []. */
export async function runJson<T>(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<T> {
  const { stdout } = await run(cmd, args, opts);
  const text = stdout.trim();
  if (text === '') return [] as unknown as T;
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new SystemError(`${commandLine(cmd, args)}: output is not JSON (${(err as Error).message})`);
  }
}

/**
 * True when a process with this pid exists and is not a zombie (an exited child nobody
 * reaped yet counts as dead). EPERM (exists, owned by someone else) counts as alive.
 */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) S ...": comm may contain spaces and parentheses, so look after the last ')'.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
  } catch {
    // No /proc (or it vanished just now): trust kill(0).
  }
  return true;
}
