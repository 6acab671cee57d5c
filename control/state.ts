// The daemon's state directory: a crash-safe JSON store and a lock file.
//
//   DIR/state.json      {"version": 1, "savedAt": ISO, "state": <T>}
//   DIR/state.json.tmp  only while saving (a leftover one is from a crash: ignored, removed)
//   DIR/lock            the pid of the daemon that owns DIR
//
// save() = write tmp + fsync + rename over state.json + fsync(DIR): after a crash at any
// point, state.json is either the old or the new content, never a torn mix.

import * as fs from 'fs';
import * as path from 'path';
import { ConflictError, VswError } from './errors';
import { pidAlive } from './exec';

export const STATE_VERSION = 1;

interface StateFile<T> {
  version: number;
  savedAt: string;
  state: T;
}

function msg(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class StateStore<T> {
  readonly dir: string;
  readonly file: string;
  readonly tmpFile: string;
  readonly lockFile: string;
  private locked = false;
  private readonly check?: (state: unknown) => string | undefined;

  /**
   * Creates DIR (mode 0700, parents too) when absent. `check` validates a loaded state's
   * shape: it returns what is wrong ("networks: expected an array, got string") or undefined.
   */
  constructor(dir: string, check?: (state: unknown) => string | undefined) {
    this.check = check;
    this.dir = path.resolve(dir);
    this.file = path.join(this.dir, 'state.json');
    this.tmpFile = `${this.file}.tmp`;
    this.lockFile = path.join(this.dir, 'lock');
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new VswError(`cannot create state dir ${this.dir}: ${msg(err)}`);
    }
    if (!fs.statSync(this.dir).isDirectory()) throw new VswError(`state dir ${this.dir} is not a directory`);
  }

  /**
   * The saved state, or undefined when nothing was ever saved. A leftover state.json.tmp is
   * removed. Unreadable/corrupt state.json, an unknown version or a state that fails the
   * shape check -> VswError naming the file (and the field), with the file left as it is
   * (never silently empty: that would lose every network and container).
   */
  load(): T | undefined {
    try {
      fs.rmSync(this.tmpFile, { force: true });
    } catch {
      // not fatal: save() overwrites it anyway
    }
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new VswError(`cannot read state file ${this.file}: ${msg(err)}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new VswError(
        `state file ${this.file} is corrupt (${msg(err)}); repair it or move it away to start from empty state`,
      );
    }
    const f = parsed as Partial<StateFile<T>> | null;
    if (!f || typeof f !== 'object' || Array.isArray(f) || !('state' in f) || typeof f.version !== 'number') {
      throw new VswError(
        `state file ${this.file} is corrupt (not a vsw state file: expected {"version", "state"}); ` +
          'repair it or move it away to start from empty state',
      );
    }
    if (f.version !== STATE_VERSION) {
      throw new VswError(
        `state file ${this.file} has version ${f.version}; this vsw understands version ${STATE_VERSION}`,
      );
    }
    const wrong = this.check?.(f.state);
    if (wrong !== undefined) {
      throw new VswError(`state file ${this.file}: ${wrong}; repair it or move it away to start from empty state`);
    }
    return f.state as T;
  }

  /** Write the state atomically and durably (synchronous). Throws VswError on failure. */
  save(state: T): void {
    const body: StateFile<T> = { version: STATE_VERSION, savedAt: new Date().toISOString(), state };
    const text = `${JSON.stringify(body, null, 2)}\n`;
    let fd: number | undefined;
    try {
      fd = fs.openSync(this.tmpFile, 'w', 0o600);
      fs.writeFileSync(fd, text);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fd = undefined;
      fs.renameSync(this.tmpFile, this.file);
    } catch (err) {
      if (fd !== undefined) {
        try { fs.closeSync(fd); } catch { /* ignore */ }
      }
      try { fs.rmSync(this.tmpFile, { force: true }); } catch { /* ignore */ }
      throw new VswError(`cannot save state to ${this.file}: ${msg(err)}`);
    }
    // Make the rename itself durable.
    let dfd: number | undefined;
    try {
      dfd = fs.openSync(this.dir, 'r');
      fs.fsyncSync(dfd);
    } catch (err) {
      throw new VswError(`cannot sync state dir ${this.dir}: ${msg(err)}`);
    } finally {
      if (dfd !== undefined) fs.closeSync(dfd);
    }
  }

  /**
   * Take DIR/lock (created exclusively, holding our pid). When it exists and names a live
   * process other than us -> ConflictError "another vsw daemon (pid N) uses state dir D".
   * A stale lock (dead pid, or garbage) is taken over. Locking twice in one process is fine.
   */
  lock(): void {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const fd = fs.openSync(this.lockFile, 'wx', 0o600);
        try {
          fs.writeFileSync(fd, `${process.pid}\n`);
          fs.fsyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
        this.locked = true;
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new VswError(`cannot create lock file ${this.lockFile}: ${msg(err)}`);
        }
      }
      const holder = this.lockHolder();
      if (holder === process.pid) {
        this.locked = true;
        return;
      }
      if (holder !== undefined && pidAlive(holder)) {
        throw new ConflictError(`another vsw daemon (pid ${holder}) uses state dir ${this.dir}`);
      }
      // Stale: remove it and try again (a concurrent starter may win the race: then we
      // see its live pid on the next round).
      try {
        fs.rmSync(this.lockFile, { force: true });
      } catch (err) {
        throw new VswError(`cannot remove stale lock file ${this.lockFile}: ${msg(err)}`);
      }
    }
    throw new VswError(`cannot take lock file ${this.lockFile}: it keeps changing`);
  }

  /** Remove the lock file if it is ours. */
  unlock(): void {
    if (this.lockHolder() === process.pid) {
      try {
        fs.rmSync(this.lockFile, { force: true });
      } catch {
        // best effort at shutdown
      }
    }
    this.locked = false;
  }

  /** True while this store holds the lock. */
  isLocked(): boolean {
    return this.locked;
  }

  /** The pid written in the lock file, or undefined (absent, empty or garbage). */
  lockHolder(): number | undefined {
    let text: string;
    try {
      text = fs.readFileSync(this.lockFile, 'utf8');
    } catch {
      return undefined;
    }
    const t = text.trim();
    if (!/^\d+$/.test(t)) return undefined;
    const pid = Number(t);
    return pid > 0 ? pid : undefined;
  }
}
