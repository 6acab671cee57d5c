// Containers: a named network namespace (bridge or none mode), the host's namespace (host
// mode) or another container's (container: mode), with endpoints on networks, published
// ports, DNS aliases and links. Create, connect, disconnect, exit, remove: each change is
// saved, and told to the router, before it is answered. Creation saves its intent (a
// 'creating' record) before it makes anything, so that a crash half-way is undone at the
// next start (recovery.ts, docs/RELIABILITY.md); names that would be one DNS name with
// another container's are refused first (names.ts).

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import type { ContainerCreate, ContainerInfo, EndpointInfo } from '../types';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../errors';
import type { EventBus } from '../events';
import { removeContainerEtc } from '../etc';
import * as ipam from '../ipam';
import * as netns from '../netns';
import type { Router } from '../router';
import { isAttached, runtimeName, type ContainerRecord, type NetworkRecord, type Records, type Saver } from './records';
import type { PortBook } from './ports';
import type { Endpoints } from './endpoints';
import { endpointInfo } from './networks';
import { checkDnsNames } from './names';
import { undoCreation } from './recovery';
import { armedWhile, crashPoint } from '../crash';

export interface ContainerDeps {
  records: Records;
  ports: PortBook;
  endpoints: Pick<Endpoints, 'attach' | 'unplug' | 'writeEtc'>;
  events: Pick<EventBus, 'emit'>;
  router: Pick<Router, 'checkPublish'>;
  store: Saver;
  syncRouter(): Promise<void>;
  /** Detached commands (supervise.ts). */
  processes: { start(c: ContainerRecord): void; forget(name: string): void };
  /** Where detached commands log: LOGDIR/NAME.log. */
  logDir: string;
}

export class Containers {
  constructor(private readonly d: ContainerDeps) {}

  /** Containers being created are not shown: they are answered once made. */
  list(): ContainerInfo[] {
    return this.d.records.state.containers.filter((c) => c.status !== 'creating').map((c) => this.info(c));
  }

  inspect(name: string): ContainerInfo {
    const c = this.d.records.container(name);
    if (c.status === 'creating') throw new NotFoundError(`container '${name}' not found (it is being created)`);
    return this.info(c);
  }

  private info(c: ContainerRecord): ContainerInfo {
    // A 'creating' record never gets here (list, inspect); create answers once it is made.
    const status = c.status === 'creating' ? 'created' : c.status;
    return {
      name: c.name, id: c.id, mode: c.mode, netns: c.netns, sharedWith: c.sharedWith, sandbox: c.sandbox,
      networks: c.endpoints.map((e) => endpointInfo(this.d.records, this.d.ports, c, e)), cmd: c.cmd, detach: c.detach, rm: c.rm,
      status, pid: c.pid, exitCode: c.exitCode, created: c.created,
      ports: c.ports ?? [], links: c.links ?? [],
    };
  }

  async create(spec: ContainerCreate): Promise<ContainerInfo> {
    const { records, endpoints } = this.d;
    ipam.validName(spec.name, 'container name');
    if (records.state.containers.some((c) => c.name === spec.name)) {
      throw new ConflictError(`container '${spec.name}' already exists`);
    }
    const cmd = spec.cmd ?? [];
    if (!Array.isArray(cmd) || cmd.some((a) => typeof a !== 'string')) throw new InvalidArgumentError('cmd must be a list of strings');
    if (spec.detach && cmd.length === 0) throw new InvalidArgumentError('run -d needs a command to run (after --)');
    const want = spec.network ?? records.defaultNetwork().name;
    const c: ContainerRecord = {
      name: spec.name, id: crypto.randomBytes(6).toString('hex'), mode: 'bridge', netns: spec.name,
      endpoints: [], cmd, detach: !!spec.detach, rm: !!spec.rm, status: 'created', created: new Date().toISOString(),
    };
    let net: NetworkRecord | undefined;
    if (want === 'host') {
      c.mode = 'host'; c.netns = '';
    } else if (want === 'none') {
      c.mode = 'none';
    } else if (want.startsWith('container:')) {
      const other = records.container(want.slice('container:'.length));
      c.mode = 'container'; c.netns = other.netns; c.sharedWith = other.sharedWith ?? other.name;
    } else {
      net = records.network(want);
    }
    if (spec.ip !== undefined && spec.ip !== '' && !net) {
      throw new InvalidArgumentError(`--ip needs a network to take the address from (not '${want}')`);
    }
    const aliases = validAliases(spec.aliases);
    if (aliases.length > 0 && !net) throw new InvalidArgumentError(`--alias needs a network (not '${want}')`);
    const publish = spec.publish ?? [];
    this.d.router.checkPublish(c.name, net ? { name: net.name, internal: net.internal ?? false } : undefined, publish);
    c.ports = publish.map((m) => ({ ...m }));
    c.links = (spec.links ?? []).map((l) => {
      if (!l || typeof l.name !== 'string') throw new InvalidArgumentError('--link: expected NAME[:ALIAS]');
      const other = records.container(l.name);
      if (!net || !other.endpoints.some((e) => e.network === net!.name)) {
        throw new InvalidArgumentError(`--link ${l.name}: the container is not on network '${net?.name ?? want}'`);
      }
      if (l.alias !== undefined) ipam.validName(l.alias, 'link alias');
      return l.alias ? { name: l.name, alias: l.alias } : { name: l.name };
    });
    checkDnsNames(c.name, net ? [{ network: net.name, aliases }] : [], records.state.containers);
    const ownNetns = c.mode === 'bridge' || c.mode === 'none';
    if (ownNetns && netns.netnsExists(c.name)) {
      throw new ConflictError(`a network namespace named '${c.name}' already exists (not a vsw container): pick another name`);
    }
    // The intent first: a crash from here on leaves a 'creating' record, and the next start
    // undoes whatever of the container was made (recovery.ts undoCreation).
    c.status = 'creating';
    records.state.containers.push(c);
    this.d.store.save();
    try {
      await armedWhile(async () => {
        crashPoint('after-intent');
        if (ownNetns) {
          await netns.createNetns(c.name);
          if (net) {
            const e = await endpoints.attach(c, net, spec.ip, true);
            if (aliases.length > 0) e.aliases = aliases;
            c.endpoints.push(e);
          }
          endpoints.writeEtc(c);
        }
        crashPoint('before-save');
      });
      c.status = 'created';
      if (c.detach) this.d.processes.start(c);
      else if (cmd.length > 0) c.status = 'running'; // the CLI runs it in the foreground and reports the exit
      this.d.store.save();
    } catch (e) {
      await this.discard(c).catch(() => undefined);
      this.d.store.save();
      throw e;
    }
    await this.d.syncRouter();
    this.d.events.emit('container-start', {
      container: c.name, mode: c.mode, network: c.endpoints[0]?.network, ip: c.endpoints[0]?.ip, cmd: c.cmd.join(' ') || undefined,
    });
    return this.info(c);
  }

  /** Connect with aliases already checked (validAliases). */
  async connect(network: string, container: string, ip: string | undefined, aliases: string[]): Promise<EndpointInfo> {
    const { records, endpoints } = this.d;
    const n = records.network(network);
    const c = records.container(container);
    refuseAttached(c, 'connected to a network by vsw');
    if (c.mode !== 'bridge' && c.mode !== 'none') {
      throw new ConflictError(`container '${container}' uses ${c.mode === 'host' ? 'the host network' : `the network namespace of '${c.sharedWith}'`} and cannot be connected to a network`);
    }
    if (c.endpoints.some((e) => e.network === network)) {
      throw new ConflictError(`container '${container}' is already connected to network '${network}'`);
    }
    checkDnsNames(c.name, [...c.endpoints, { network, aliases }], records.state.containers);
    // A crash from here on leaves a veth pair no record lists: the next start deletes it.
    const e = await armedWhile(() => endpoints.attach(c, n, ip, c.endpoints.length === 0));
    if (aliases.length > 0) e.aliases = aliases;
    c.endpoints.push(e);
    if (c.mode === 'none') c.mode = 'bridge';
    endpoints.writeEtc(c);
    this.d.store.save();
    await this.d.syncRouter();
    return endpointInfo(records, this.d.ports, c, e);
  }

  async disconnect(network: string, container: string): Promise<void> {
    const { records, endpoints } = this.d;
    records.network(network);
    const c = records.container(container);
    refuseAttached(c, 'disconnected by vsw');
    const e = c.endpoints.find((x) => x.network === network);
    if (!e) throw new NotFoundError(`container '${container}' is not connected to network '${network}'`);
    await endpoints.unplug(c, e);
    c.endpoints = c.endpoints.filter((x) => x !== e);
    endpoints.writeEtc(c);
    this.d.store.save();
    await this.d.syncRouter();
  }

  async exited(name: string, code: number): Promise<void> {
    const c = this.d.records.container(name);
    c.status = 'exited';
    c.exitCode = code;
    c.pid = undefined;
    this.d.store.save();
    this.d.events.emit('container-exit', { container: name, code });
  }

  async remove(name: string, force: boolean): Promise<void> {
    const { records } = this.d;
    const c = records.container(name);
    refuseAttached(c, 'removed by vsw');
    if (c.status === 'creating') {
      // Left by a creation that could not be undone at start: remove what vsw made of it.
      if (!force) throw new ConflictError(`container '${name}' was never fully made: use rm -f to remove what there is of it`);
      await this.discard(c);
      this.d.store.save();
      return;
    }
    const sharers = records.state.containers.filter((x) => x.sharedWith === name);
    if (sharers.length > 0) {
      throw new ConflictError(`containers ${sharers.map((x) => x.name).join(', ')} share the network namespace of '${name}': remove them first`);
    }
    if (!force) {
      const pids = c.pid !== undefined && netns.pidAlive(c.pid) ? [c.pid]
        : (c.mode === 'bridge' || c.mode === 'none') && netns.netnsExists(c.netns) ? await netns.netnsPids(c.netns).catch(() => []) : [];
      if (pids.length > 0) {
        throw new ConflictError(`container '${name}' is running (pid ${pids.join(', ')}): stop it, or use rm -f`);
      }
    }
    await this.destroy(c, true);
    this.d.store.save();
    await this.d.syncRouter();
  }

  /**
   * Undo a creation that did not finish (a failure, or a 'creating' record): close its
   * ports, remove whatever of its namespace, veths, /etc/netns files and log exists, and
   * forget it (not saved). No event: it was never announced.
   */
  async discard(c: ContainerRecord): Promise<void> {
    if (c.pid !== undefined && netns.pidAlive(c.pid)) {
      try { process.kill(-c.pid, 'SIGKILL'); } catch { try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ } }
    }
    this.d.processes.forget(c.name);
    for (const e of c.endpoints) await this.d.endpoints.unplug(c, e).catch(() => undefined);
    await undoCreation(c, this.d.records, this.d.logDir);
    const { records } = this.d;
    records.state.containers = records.state.containers.filter((x) => x !== c);
  }

  /** Kill what runs in the container, unplug it, delete its namespace, forget it (not saved). */
  async destroy(c: ContainerRecord, killAll: boolean): Promise<void> {
    if (c.pid !== undefined && netns.pidAlive(c.pid)) {
      try { process.kill(-c.pid, 'SIGKILL'); } catch { try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ } }
    }
    this.d.processes.forget(c.name);
    if (killAll && (c.mode === 'bridge' || c.mode === 'none') && netns.netnsExists(c.netns)) {
      for (const pid of await netns.netnsPids(c.netns).catch(() => [])) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
    for (const e of c.endpoints) await this.d.endpoints.unplug(c, e);
    if (c.mode === 'bridge' || c.mode === 'none') {
      await netns.deleteNetns(c.netns);
      removeContainerEtc(c.netns);
    }
    fs.rmSync(path.join(this.d.logDir, `${c.name}.log`), { force: true });
    const { records } = this.d;
    records.state.containers = records.state.containers.filter((x) => x !== c);
    this.d.events.emit('container-remove', { container: c.name });
  }
}

/** A docker or cni container is its runtime's: vsw does not change it behind its back. */
function refuseAttached(c: ContainerRecord, what: string): void {
  if (!isAttached(c)) return;
  const who = runtimeName(c.mode);
  throw new ConflictError(`container '${c.name}' is ${who}'s (a ${c.mode} container) and cannot be ${what}: ${who} owns it (${c.mode === 'docker' ? 'docker rm, docker network disconnect' : 'remove it with its runtime'})`);
}

/** --alias values: DNS-name-like, no duplicates. */
export function validAliases(aliases: unknown): string[] {
  if (aliases === undefined) return [];
  if (!Array.isArray(aliases) || aliases.some((a) => typeof a !== 'string')) throw new InvalidArgumentError('aliases must be a list of names');
  for (const a of aliases as string[]) {
    if (!/^[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*$/.test(a) || a.length > 253) {
      throw new InvalidArgumentError(`invalid alias '${a}': letters, digits, '-', '_' and '.' between labels of 1-63 characters`);
    }
  }
  return [...new Set(aliases as string[])];
}
