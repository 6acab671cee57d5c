// Detached commands (`run -d`): started by the daemon in the container's namespace (setsid,
// output to LOGDIR/NAME.log), and marked exited when they end; with --rm the container goes
// with them. A command started by a daemon before a restart is not a child of this one:
// its pid is polled instead.

import * as os from 'node:os';
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { EventBus } from '../events';
import * as netns from '../netns';
import type { ContainerRecord, Records, Saver, Serial } from './records';

export interface SuperviseDeps {
  records: Records;
  events: Pick<EventBus, 'emit'>;
  store: Saver;
  serial: Serial;
  /** Remove a container (containers.ts), when its --rm command has ended. */
  destroy(c: ContainerRecord, killAll: boolean): Promise<void>;
  /** True once the daemon stops: nothing is saved after that. */
  stopping(): boolean;
  logDir: string;
}

export class Supervisor {
  private readonly children = new Map<string, ChildProcess>();

  constructor(private readonly d: SuperviseDeps) {}

  /** Start the container's command, detached. */
  start(c: ContainerRecord): void {
    const log = path.join(this.d.logDir, `${c.name}.log`);
    const { pid, child } = netns.spawnInNetns(c.mode === 'host' ? null : c.netns, c.cmd, log);
    c.pid = pid;
    c.status = 'running';
    this.children.set(c.name, child);
    child.on('exit', (code, signal) => {
      void this.d.serial(async () => {
        if (this.children.get(c.name) !== child) return;
        this.children.delete(c.name);
        c.status = 'exited';
        c.exitCode = code ?? 128 + (signal ? (signalNumber(signal) ?? 0) : 0);
        c.pid = undefined;
        this.d.events.emit('container-exit', { container: c.name, code: c.exitCode });
        if (c.rm && this.d.records.state.containers.includes(c)) await this.d.destroy(c, true);
        if (!this.d.stopping()) this.d.store.save();
      });
    });
  }

  /** The container is gone: its child's exit no longer concerns us. */
  forget(name: string): void {
    this.children.delete(name);
  }

  /** Detached commands from before a restart: mark them exited when their pid is gone. */
  async watchOrphans(): Promise<void> {
    let changed = false;
    for (const c of this.d.records.state.containers) {
      if (c.status !== 'running' || !c.detach || c.pid === undefined || this.children.has(c.name)) continue;
      if (!netns.pidAlive(c.pid)) {
        c.status = 'exited'; c.pid = undefined; changed = true;
        if (c.rm) await this.d.destroy(c, true);
      }
    }
    if (changed && !this.d.stopping()) this.d.store.save();
  }
}

function signalNumber(sig: NodeJS.Signals): number | undefined {
  const n = os.constants.signals[sig];
  return typeof n === 'number' ? n : undefined;
}
