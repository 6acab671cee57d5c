// After a restart, every container of the loaded state is one of:
//   - 'creating': the daemon died while making it (the intent record is saved before
//     anything is made, containers.ts create). Whatever of it exists is undone
//     (undoCreation): the processes in its namespace, the namespace, the host ends of its
//     veths, /etc/netns/NAME, its log; the record goes, and its address with it.
//   - gone: its namespace no longer exists, or is a stale file that is no namespace (made in
//     a mount namespace we cannot see, or unmounted). Forgotten, with the same leftovers
//     removed (its recorded pid is not killed: after a reboot that pid is someone else's).
//   - alive: re-attached with the same address and MAC (a veth pair someone deleted is made
//     again; a veth pair made for it that no record lists, left by a `network connect` the
//     daemon died in, is deleted).
//   - a docker or cni container (attachments.ts): its endpoints one by one
//     (recoverAttachments): host ends that still exist are switch ports again.
// One container that cannot be undone or re-attached never stops the daemon from starting:
// it is reported in the log and skipped (kept in the state, `vsw rm -f` removes it).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { removeContainerEtc } from '../etc';
import * as netns from '../netns';
import type { Endpoints } from './endpoints';
import { isAttached, runtimeName, type ContainerRecord, type EndpointRecord, type Records } from './records';

export interface RecoveryDeps {
  records: Records;
  endpoints: Pick<Endpoints, 'plug' | 'open'>;
  /** Where detached commands log: LOGDIR/NAME.log. */
  logDir: string;
}

function msg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Remove the container's /etc/netns/NAME (when the namespace was its own) and its log. */
function removeFiles(c: ContainerRecord, logDir: string): void {
  if (c.mode === 'bridge' || c.mode === 'none') removeContainerEtc(c.netns);
  fs.rmSync(path.join(logDir, `${c.name}.log`), { force: true });
}

/**
 * Remove whatever a creation that did not finish made (not the record itself): what runs in
 * its namespace (the namespace is ours: create refuses a name that exists), the namespace
 * (its veths with it), any host end named for the container on any network (the record
 * may not list an endpoint made just before the crash), /etc/netns/NAME and the log.
 */
export async function undoCreation(c: ContainerRecord, records: Records, logDir: string): Promise<void> {
  const own = c.mode === 'bridge' || c.mode === 'none';
  if (own && netns.netnsExists(c.netns)) {
    for (const pid of await netns.netnsPids(c.netns).catch(() => [])) {
      if (pid === process.pid) continue;
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    await netns.deleteNetns(c.netns);
  }
  const ends = new Set([
    ...c.endpoints.map((e) => e.hostIf),
    ...records.state.networks.map((n) => netns.hostIfName(`${c.id}/${n.id}`)),
  ]);
  for (const l of await netns.listLinks()) {
    if (ends.has(l.name)) await netns.deleteLink(l.name);
  }
  removeFiles(c, logDir);
}

/** Undo, forget or re-attach every container of the loaded state (not saved). */
export async function recoverContainers(d: RecoveryDeps, log: (line: string) => void): Promise<void> {
  const { records } = d;
  const keep: ContainerRecord[] = [];
  for (const c of records.state.containers) {
    if (c.status !== 'creating') continue;
    try {
      await undoCreation(c, records, d.logDir);
      log(`container ${c.name}: its creation was interrupted (the daemon stopped half-way); removed what was made of it`);
    } catch (e) {
      keep.push(c);
      log(`container ${c.name}: its creation was interrupted, and undoing it failed (${msg(e)}): skipped; \`vsw rm -f ${c.name}\` removes it`);
    }
  }
  const byName = new Map(records.state.containers.map((c) => [c.name, c]));
  for (const c of records.state.containers) {
    if (c.status === 'creating') continue;
    if (isAttached(c)) {
      if (await recoverAttachments(c, d, log)) keep.push(c);
      continue;
    }
    const owner = c.mode === 'container' ? byName.get(c.sharedWith ?? '') : c;
    const ownerNs = owner && owner.mode !== 'host' ? owner.netns : undefined;
    const stale = ownerNs !== undefined && netns.netnsStale(ownerNs);
    const alive = c.mode === 'host' || (owner !== undefined && owner.status !== 'creating'
      && (owner.mode === 'host' || (netns.netnsExists(owner.netns) && !stale)));
    if (!alive) {
      log(stale
        ? `container ${c.name}: /run/netns/${ownerNs} is no network namespace any more (made in a mount namespace this daemon cannot see, or unmounted); removing it`
        : `container ${c.name}: its network namespace is gone; removing it`);
      try {
        for (const e of c.endpoints) await netns.deleteLink(e.hostIf).catch(() => undefined);
        if (c.mode === 'bridge' || c.mode === 'none') await netns.deleteNetns(c.netns);
        removeFiles(c, d.logDir);
      } catch (e) {
        log(`container ${c.name}: removing its leftovers: ${msg(e)}`);
      }
      continue;
    }
    try {
      for (const e of c.endpoints) {
        const n = records.state.networks.find((x) => x.name === e.network);
        if (!n) continue;
        if (!(await netns.linkExists(e.hostIf))) {
          // The pair is gone (someone deleted it): make a new one with the same address and MAC.
          await netns.deleteLink(e.innerIf, c.netns).catch(() => undefined);
          await netns.createVeth(e.hostIf, c.netns, n.mtu, e.innerIf);
        }
        await d.endpoints.plug(c, n, e, e === c.endpoints[0]);
      }
    } catch (e) {
      keep.push(c);
      log(`container ${c.name}: cannot re-attach it (${msg(e)}): skipped; \`vsw rm -f ${c.name}\` removes it`);
      continue;
    }
    if (c.status === 'running' && c.pid !== undefined && !netns.pidAlive(c.pid)) { c.status = 'exited'; c.pid = undefined; }
    if (c.status === 'running' && !c.detach) { c.status = 'exited'; } // its CLI went with the old daemon's answer
    keep.push(c);
    log(`container ${c.name}: re-attached`);
  }
  records.state.containers = records.state.containers.filter((c) => keep.includes(c))
    .filter((c) => c.mode !== 'container' || keep.some((o) => o.name === c.sharedWith));
  await removeStrayEnds(records, log);
}

/**
 * A docker or cni container's endpoints (attachments.ts): the runtime made the sandbox and
 * moved the inner ends, so only the host ends are ours. An endpoint whose creation was
 * interrupted is undone (its host end deleted, the peer goes with it); one whose host end
 * is gone (the runtime tore the sandbox down meanwhile) is forgotten; the others are
 * switch ports again, as they were. False when none is left (the container goes too).
 */
async function recoverAttachments(c: ContainerRecord, d: RecoveryDeps, log: (line: string) => void): Promise<boolean> {
  const kept: EndpointRecord[] = [];
  for (const e of c.endpoints) {
    const n = d.records.state.networks.find((x) => x.name === e.network);
    const id = e.attachment?.endpoint ?? '?';
    try {
      if (!e.attachment || e.attachment.status === 'creating' || !n) {
        await netns.deleteLink(e.hostIf);
        log(`container ${c.name}: attachment ${id} on network ${e.network}: ${n ? 'its creation was interrupted (the daemon stopped half-way); removed what was made of it' : 'its network is gone; removed'}`);
        continue;
      }
      if (!(await netns.linkExists(e.hostIf))) {
        log(`container ${c.name}: attachment ${id}: its veth ${e.hostIf} is gone (${runtimeName(c.mode)} removed the sandbox?); forgotten`);
        continue;
      }
      kept.push(e);
      await d.endpoints.open(c, n, e);
      log(`container ${c.name}: attachment ${id} on network ${n.name} re-attached`);
    } catch (err) {
      log(`container ${c.name}: attachment ${id}: cannot re-attach it (${msg(err)}): kept, not switched; DELETE /attachments/${encodeURIComponent(id)} removes it`);
    }
  }
  c.endpoints = kept;
  return kept.length > 0;
}

/**
 * A `network connect` the daemon died in can leave a veth pair that no record lists: its
 * host end is named for the container and the network (hostIfName), so it would block the
 * next connect. Delete such ends (their peers inside the containers go with them).
 */
async function removeStrayEnds(records: Records, log: (line: string) => void): Promise<void> {
  const listed = new Set(records.state.containers.flatMap((c) => c.endpoints.map((e) => e.hostIf)));
  const ours = new Map<string, string>();
  for (const c of records.state.containers) {
    for (const n of records.state.networks) ours.set(netns.hostIfName(`${c.id}/${n.id}`), `${c.name} on network ${n.name}`);
  }
  let links: netns.LinkInfo[];
  try {
    links = await netns.listLinks();
  } catch (e) {
    log(`cannot list the interfaces to look for stray veth ends: ${msg(e)}`);
    return;
  }
  for (const l of links) {
    const of = ours.get(l.name);
    if (of === undefined || listed.has(l.name)) continue;
    try {
      await netns.deleteLink(l.name);
      log(`removed ${l.name}, a veth end of container ${of} that no record lists (a network connect that did not finish)`);
    } catch (e) {
      log(`cannot remove the stray veth end ${l.name} of container ${of}: ${msg(e)}`);
    }
  }
}
