// What the stress suite (stress/main.ts) runs on: commands with timeouts, waits on
// conditions, background processes, its own namespaces, and a `vsw daemon` inside one of
// them. The same ideas as test/fixtures/harness.ts, written for a program compiled into
// dist/stress/ (the fixtures resolve the repository from test/fixtures/, and are not part of
// the build).
//
// Network safety: everything happens in namespaces named PREFIX-* that this process makes
// (PREFIX = `vs` + pid % 10000). cleanupAll() kills what runs in them, deletes them and
// their /etc/netns entries; it runs at the end, on failure, and on SIGINT/SIGTERM/SIGHUP.
// Nothing is added to the machine's own namespace.

import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';

/** The repository: the first directory above this file holding package.json. */
function findRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return path.resolve(__dirname, '..', '..');
    dir = up;
  }
}

export const ROOT = findRoot();
export const CLI = path.join(ROOT, 'dist', 'control', 'cli.js');
export const BLAST = path.join(ROOT, 'dist', 'stress', 'blast.js');
export const NODE = process.execPath;

export const PREFIX = `vs${String(process.pid % 10000).padStart(4, '0')}`;

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------------------
// Commands

export interface ShResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Run a command (no shell), SIGKILL its process group after timeoutMs. Never rejects. */
export function sh(cmd: string, args: string[], o: { timeoutMs?: number; input?: string } = {}): Promise<ShResult> {
  const timeoutMs = o.timeoutMs ?? 30_000;
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let done = false;
    const child = spawn(cmd, args, { stdio: [o.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], cwd: ROOT, detached: true });
    const finish = (r: ShResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.stdout!.destroy();
      child.stderr!.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
      setTimeout(() => finish({ code: null, signal: 'SIGKILL', stdout, stderr, timedOut }), 2_000).unref();
    }, timeoutMs);
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    if (o.input !== undefined) child.stdin!.end(o.input);
    child.on('error', (e) => finish({ code: 127, signal: null, stdout, stderr: `${stderr}${cmd}: ${e.message}\n`, timedOut }));
    child.on('close', (code, signal) => finish({ code, signal, stdout, stderr, timedOut }));
  });
}

export function describe(what: string, r: ShResult): string {
  const how = r.timedOut ? 'timed out' : r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;
  return `${what}: ${how}: ${(r.stderr || r.stdout).trim().slice(-600)}`;
}

export async function shOk(cmd: string, args: string[], o: { timeoutMs?: number; input?: string } = {}): Promise<ShResult> {
  const r = await sh(cmd, args, o);
  if (r.code !== 0) throw new Error(describe(`${cmd} ${args.join(' ')}`, r));
  return r;
}

/** CMD inside namespace NS. */
export function inNs(ns: string, argv: string[], o: { timeoutMs?: number; input?: string } = {}): Promise<ShResult> {
  return sh('ip', ['netns', 'exec', ns, ...argv], o);
}

/** Poll `check` until truthy (returned) or timeoutMs (throws, naming `what`). */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  { timeoutMs = 15_000, intervalMs = 200 } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(intervalMs);
  }
}

// ---------------------------------------------------------------------------------------
// Background processes

export interface Bg {
  readonly proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited(): boolean;
  /** Resolves with the exit (SIGKILL after timeoutMs). */
  wait(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const bgs = new Set<Bg>();

/**
 * A long-running command, SIGKILLed by cleanupAll() at the latest. unread: its stdout is a
 * pipe nobody reads (a slow reader), instead of being collected; discard: read and thrown
 * away (a server that logs every request must not block on a full pipe).
 */
export function bg(cmd: string, args: string[], o: { unread?: boolean; discard?: boolean } = {}): Bg {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT, detached: true });
  let out = '';
  let err = '';
  if (o.unread) proc.stdout!.pause();
  else if (o.discard) proc.stdout!.resume();
  else proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  proc.on('error', (e) => { err += `${cmd}: ${e.message}\n`; });
  let status: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exitP = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('close', (code, signal) => { status = { code, signal }; resolve(status); });
    proc.on('error', () => { status ??= { code: 127, signal: null }; resolve(status); });
  });
  const kill = (sig: NodeJS.Signals): void => {
    try { process.kill(-proc.pid!, sig); } catch { /* gone */ }
    try { proc.kill(sig); } catch { /* gone */ }
  };
  const wait = async (timeoutMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> => {
    if (status) return status;
    let t: NodeJS.Timeout | undefined;
    const r = await Promise.race([exitP, new Promise<null>((res) => { t = setTimeout(() => res(null), timeoutMs); })]);
    clearTimeout(t);
    if (r) return r;
    kill('SIGKILL');
    if (o.unread) proc.stdout!.destroy();
    return exitP;
  };
  const b: Bg = {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited: () => status !== null,
    wait,
    async stop(signal: NodeJS.Signals = 'SIGKILL') {
      if (!status) kill(signal);
      if (o.unread) proc.stdout!.destroy();
      await wait(3_000);
      bgs.delete(b);
    },
  };
  bgs.add(b);
  return b;
}

// ---------------------------------------------------------------------------------------
// Namespaces and cleanup

export function listNetns(): string[] {
  try { return fs.readdirSync('/run/netns').filter((n) => !n.startsWith('.')); } catch { return []; }
}

export function netnsExists(name: string): boolean {
  return fs.existsSync(path.join('/run/netns', name));
}

export async function addNetns(name: string): Promise<void> {
  await shOk('ip', ['netns', 'add', name]);
  await shOk('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
}

const daemons = new Set<ChildProcess>();
const tempDirs = new Set<string>();

/** Everything PREFIX-* in /run/netns and /etc/netns, and links named PREFIX* in our own namespace. */
export function leftovers(): string[] {
  const out = listNetns().filter((n) => n.startsWith(`${PREFIX}-`)).map((n) => `namespace ${n}`);
  try { out.push(...fs.readdirSync('/etc/netns').filter((n) => n.startsWith(`${PREFIX}-`)).map((n) => `/etc/netns/${n}`)); } catch { /* none */ }
  try { out.push(...fs.readdirSync('/sys/class/net').filter((n) => n.startsWith(PREFIX)).map((n) => `link ${n}`)); } catch { /* none */ }
  return out;
}

/**
 * Kill every process we started and every process in our namespaces, delete the
 * namespaces, /etc/netns entries and temp dirs. Synchronous, so that an exit or signal
 * handler can run it; every command has a timeout. Safe to call more than once.
 */
export function cleanupAll(): void {
  for (const p of daemons) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
  for (const b of bgs) {
    try { process.kill(-b.proc.pid!, 'SIGKILL'); } catch { /* gone */ }
    try { b.proc.kill('SIGKILL'); } catch { /* gone */ }
  }
  for (const ns of listNetns().filter((n) => n.startsWith(`${PREFIX}-`))) {
    const pids = spawnSync('ip', ['netns', 'pids', ns], { timeout: 5_000, encoding: 'utf8' }).stdout ?? '';
    for (const pid of pids.split(/\s+/).filter((x) => /^\d+$/.test(x)).map(Number)) {
      if (pid !== process.pid) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    }
    spawnSync('ip', ['netns', 'del', ns], { timeout: 5_000 });
  }
  try {
    for (const n of fs.readdirSync('/etc/netns').filter((x) => x.startsWith(`${PREFIX}-`))) {
      fs.rmSync(path.join('/etc/netns', n), { recursive: true, force: true });
    }
  } catch { /* none */ }
  for (const d of tempDirs) { try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ } }
  tempDirs.clear();
}

let armed = false;
/** cleanupAll() on exit and on SIGINT/SIGTERM/SIGHUP (then exit 130/143/129). */
export function armCleanup(): void {
  if (armed) return;
  armed = true;
  process.once('exit', cleanupAll);
  const codes: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      process.stderr.write(`stress: ${sig}: cleaning up\n`);
      cleanupAll();
      process.exit(codes[sig]);
    });
  }
}

// ---------------------------------------------------------------------------------------
// The daemon

export interface VswResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export class Daemon {
  readonly sock: string;
  readonly stateDir: string;
  proc: ChildProcess | undefined;
  private exitP: Promise<void> = Promise.resolve();
  private exited = true;
  private logText = '';

  constructor(readonly hostNs: string, readonly args: string[]) {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-`));
    tempDirs.add(base);
    this.stateDir = path.join(base, 'state');
    this.sock = path.join(base, 'vsw.sock');
  }

  get pid(): number { return this.proc?.pid ?? -1; }
  running(): boolean { return !this.exited; }
  log(): string { return this.logText; }

  async start(readyTimeoutMs = 30_000): Promise<number> {
    const t0 = Date.now();
    const p = spawn('ip', ['netns', 'exec', this.hostNs, NODE, CLI, '--socket', this.sock, 'daemon', '--state-dir', this.stateDir, ...this.args],
      { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
    this.proc = p;
    this.exited = false;
    daemons.add(p);
    const keep = (d: Buffer): void => { this.logText = (this.logText + d.toString()).slice(-200_000); };
    p.stdout!.on('data', keep);
    p.stderr!.on('data', keep);
    this.exitP = new Promise((resolve) => {
      p.on('exit', (code, signal) => {
        daemons.delete(p);
        this.exited = true;
        this.logText += `[stress: daemon ${p.pid} exited: code ${code} signal ${signal}]\n`;
        resolve();
      });
    });
    await waitFor('the daemon to answer `vsw network ls`', async () => {
      if (this.exited) throw new Error(`the daemon exited: ${this.logText.slice(-1500)}`);
      if (!fs.existsSync(this.sock)) return false;
      return (await this.vsw(['network', 'ls'], 10_000)).code === 0;
    }, { timeoutMs: readyTimeoutMs, intervalMs: 100 });
    return Date.now() - t0;
  }

  async stop(): Promise<void> {
    if (this.exited || !this.proc) return;
    this.proc.kill('SIGINT');
    const t = setTimeout(() => { try { this.proc?.kill('SIGKILL'); } catch { /* gone */ } }, 5_000);
    await this.exitP;
    clearTimeout(t);
  }

  async kill9(): Promise<void> {
    if (this.exited || !this.proc) return;
    this.proc.kill('SIGKILL');
    await this.exitP;
  }

  async vsw(args: string[], timeoutMs = 60_000): Promise<VswResult> {
    const r = await sh(NODE, [CLI, '--socket', this.sock, ...args], { timeoutMs });
    return { code: r.code, stdout: r.stdout, stderr: r.stderr + (r.timedOut ? '[timed out]' : '') };
  }

  async vswOk(args: string[], timeoutMs = 60_000): Promise<VswResult> {
    const r = await this.vsw(args, timeoutMs);
    if (r.code !== 0) throw new Error(`vsw ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim().slice(-800)}`);
    return r;
  }

  async json<T>(args: string[]): Promise<T> {
    return JSON.parse((await this.vswOk([...args, '--format', 'json'])).stdout) as T;
  }

  /** One raw API request over the socket: status and body (bodies over 1 MB are cut). */
  api(method: string, p: string, body?: string | Buffer, timeoutMs = 30_000): Promise<{ status: number; body: string }> {
    return apiRequest(this.sock, method, p, body, timeoutMs);
  }
}

/** One HTTP request on a Unix socket; status 0 when it failed (the error in body). */
export function apiRequest(sock: string, method: string, p: string, body?: string | Buffer,
  timeoutMs = 30_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (status: number, b: string): void => { if (!done) { done = true; resolve({ status, body: b }); } };
    const req = http.request({ socketPath: sock, method, path: p, headers: body === undefined ? {} : { 'content-type': 'application/json' }, timeout: timeoutMs },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => { if (text.length < 1 << 20) text += d.toString(); });
        res.on('end', () => finish(res.statusCode ?? 0, text));
        res.on('error', (e) => finish(res.statusCode ?? 0, text + e.message));
      });
    req.on('timeout', () => { req.destroy(new Error('timed out')); });
    req.on('error', (e) => finish(0, e.message));
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

// ---------------------------------------------------------------------------------------
// Process figures

/** VmRSS of a process in MB (-1 when it is gone). */
export function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : -1;
  } catch {
    return -1;
  }
}

/** Open file descriptors of a process (-1 when it is gone). */
export function fdCount(pid: number): number {
  try { return fs.readdirSync(`/proc/${pid}/fd`).length; } catch { return -1; }
}

/** Kernel counters of a link in a namespace (`ip -s -j link show`). */
export async function linkStats(ns: string, dev: string): Promise<{ rxPackets: number; txPackets: number; rxDropped: number }> {
  const r = await shOk('ip', ['-n', ns, '-s', '-j', 'link', 'show', 'dev', dev]);
  const j = JSON.parse(r.stdout) as { stats64: { rx: { packets: number; dropped: number }; tx: { packets: number } } }[];
  return { rxPackets: j[0].stats64.rx.packets, txPackets: j[0].stats64.tx.packets, rxDropped: j[0].stats64.rx.dropped };
}

export async function linkMac(ns: string, dev: string): Promise<string> {
  const r = await shOk('ip', ['-n', ns, '-j', 'link', 'show', 'dev', dev]);
  return (JSON.parse(r.stdout) as { address: string }[])[0].address;
}

/** Names of the links of a namespace. */
export async function links(ns: string): Promise<string[]> {
  const r = await shOk('ip', ['-n', ns, '-j', 'link', 'show']);
  return (JSON.parse(r.stdout) as { ifname: string }[]).map((l) => l.ifname);
}

/** `ping` in NS: sent, received. */
export async function ping(ns: string, dst: string, count: number, intervalS = 0.2, extra: string[] = []): Promise<{ sent: number; received: number }> {
  const r = await inNs(ns, ['ping', '-n', '-q', '-c', String(count), '-i', String(intervalS), '-W', '1', ...extra, dst],
    { timeoutMs: 20_000 + count * intervalS * 1000 * 2 });
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(r.stdout);
  return m ? { sent: Number(m[1]), received: Number(m[2]) } : { sent: count, received: 0 };
}
