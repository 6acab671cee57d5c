// Running a command in a container's network namespace (foreground run, exec): find it as
// execvp would, enter the namespace (through the daemon's mount namespace when its netns
// mount is not visible here; host mode: the daemon's network namespace), pass stdio and
// signals through, and exit with the command's code.

import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tty from 'tty';
import type { Client } from '../client';
import type { ContainerInfo, DaemonInfo } from '../types';
import type { CliIo } from './common';

const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin'];

/**
 * Find an executable like execvp would: a name with '/' as is, else along $PATH (plus the
 * sbin directories when extra is set, since `ip` and `nsenter` often live there).
 * Returns the path, or the shell's code: 127 not found, 126 found but not executable.
 */
export function findExecutable(name: string, extraDirs: string[] = []): string | 126 | 127 {
  const isExec = (p: string): boolean | 'noexec' => {
    try {
      if (!fs.statSync(p).isFile()) return false;
    } catch {
      return false;
    }
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return true;
    } catch {
      return 'noexec';
    }
  };
  if (name.includes('/')) {
    const r = isExec(name);
    return r === true ? name : r === 'noexec' ? 126 : 127;
  }
  let sawNoExec = false;
  const dirs = (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':').concat(extraDirs);
  for (const d of dirs) {
    const p = path.join(d === '' ? '.' : d, name);
    const r = isExec(p);
    if (r === true) return p;
    if (r === 'noexec') sawNoExec = true;
  }
  return sawNoExec ? 126 : 127;
}

/** Whether /run/netns/NAME is a mount point (a usable namespace) in our mount namespace. */
function netnsMountVisible(name: string): boolean {
  try {
    const target = ` /run/netns/${name} `;
    return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.includes(target));
  } catch {
    return true; // cannot tell: let `ip netns exec` try
  }
}

/**
 * Run argv in the container's network namespace with inherited stdio; resolves with the
 * exit code (128+signal when killed; 127/126 when it cannot be started, like a shell).
 */
export async function runInContainer(client: Client, io: CliIo, info: ContainerInfo, argv: string[]): Promise<number> {
  let file: string;
  let args: string[];
  if (info.mode === 'docker' || info.mode === 'cni') {
    // Another runtime's sandbox (an attachment): its namespace is not a vsw name.
    io.err(`vsw: container '${info.name}' is a ${info.mode} container: enter it with its runtime (${info.mode === 'docker' ? 'docker exec' : 'e.g. podman exec'})\n`);
    return 125;
  }
  if (info.netns !== '') {
    const ip = findExecutable('ip', SBIN);
    if (typeof ip === 'number') {
      io.err('vsw: cannot run `ip` (iproute2): not found\n');
      return 127;
    }
    file = ip;
    args = ['netns', 'exec', info.netns, ...argv];
    if (!netnsMountVisible(info.netns)) {
      // The daemon runs in another mount namespace whose namespace mounts do not reach ours
      // (e.g. it was started with `ip netns exec HOST` and its parent shell is gone): enter
      // its mount namespace first, where /run/netns/NAME is a real namespace.
      const via = await viaDaemon(client, io, (d) => `--mount=/proc/${d.pid}/ns/mnt`, [ip, ...args]);
      if (typeof via === 'number') return via;
      ({ file, args } = via);
    }
  } else {
    // Host mode: the daemon's own network namespace.
    const via = await viaDaemon(client, io, (d) => `--net=${d.netnsPath}`, argv);
    if (typeof via === 'number') return via;
    ({ file, args } = via);
  }
  // The namespace wrappers exec the command themselves: check it first, so that a missing
  // command gives the shell's 127 and a clear message rather than the wrapper's 255.
  const found = findExecutable(argv[0]);
  if (typeof found === 'number') {
    io.err(`vsw: ${argv[0]}: ${found === 127 ? 'command not found' : 'permission denied'}\n`);
    return found;
  }
  return spawnForeground(io, file, args);
}

/**
 * `nsenter` into one of the daemon's namespaces (the flag built from its /info), then `rest`;
 * 127 with a message when nsenter is missing.
 */
async function viaDaemon(client: Client, io: CliIo, nsFlag: (d: DaemonInfo) => string,
  rest: string[]): Promise<{ file: string; args: string[] } | number> {
  const daemon = await client.get<DaemonInfo>('/info');
  const nsenter = findExecutable('nsenter', SBIN);
  if (typeof nsenter === 'number') {
    io.err('vsw: cannot run `nsenter` (util-linux): not found\n');
    return 127;
  }
  return { file: nsenter, args: [nsFlag(daemon), '--', ...rest] };
}

function spawnForeground(io: CliIo, file: string, args: string[]): Promise<number> {
  return new Promise<number>((resolve) => {
    let settled = false;
    const child = spawn(file, args, { stdio: 'inherit' });
    // Forward signals to the command. A terminal's ^C / hangup already reach the whole
    // foreground process group (the command included): forward SIGINT/SIGHUP only when
    // not on a terminal, so the command does not get them twice. We keep a handler in all
    // cases so that vsw itself survives to report the exit code.
    const onSignal = (sig: NodeJS.Signals): void => {
      if (sig !== 'SIGTERM' && tty.isatty(0)) return;
      if (child.exitCode === null && child.signalCode === null) {
        try { child.kill(sig); } catch { /* already gone */ }
      }
    };
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const s of signals) process.on(s, onSignal);
    const finish = (code: number): void => {
      if (settled) return;
      settled = true;
      for (const s of signals) process.off(s, onSignal);
      resolve(code);
    };
    child.on('error', (e: NodeJS.ErrnoException) => {
      io.err(`vsw: cannot run ${file}: ${e.message}\n`);
      finish(e.code === 'ENOENT' ? 127 : e.code === 'EACCES' ? 126 : 1);
    });
    child.on('exit', (code, signal) => {
      if (code !== null) finish(code);
      else finish(128 + (signal ? (os.constants.signals[signal] ?? 0) : 0));
    });
  });
}
