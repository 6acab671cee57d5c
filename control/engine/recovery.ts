// After a restart: containers whose namespace still exists are re-attached with the same
// address and MAC (a veth pair someone deleted is made again); containers whose namespace
// is gone are forgotten and their leftover host ends removed.

import * as netns from '../netns';
import type { Endpoints } from './endpoints';
import type { ContainerRecord, Records } from './records';

export interface RecoveryDeps {
  records: Records;
  endpoints: Pick<Endpoints, 'plug'>;
}

/** Re-attach or forget every container of the loaded state (not saved). */
export async function recoverContainers(d: RecoveryDeps, log: (line: string) => void): Promise<void> {
  const { records } = d;
  const keep: ContainerRecord[] = [];
  const byName = new Map(records.state.containers.map((c) => [c.name, c]));
  for (const c of records.state.containers) {
    const owner = c.mode === 'container' ? byName.get(c.sharedWith ?? '') : c;
    const alive = c.mode === 'host' || (owner !== undefined && (owner.mode === 'host' || netns.netnsExists(owner.netns)));
    if (!alive) {
      log(`container ${c.name}: its network namespace is gone; removing it`);
      for (const e of c.endpoints) await netns.deleteLink(e.hostIf).catch(() => undefined);
      continue;
    }
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
    if (c.status === 'running' && c.pid !== undefined && !netns.pidAlive(c.pid)) { c.status = 'exited'; c.pid = undefined; }
    if (c.status === 'running' && !c.detach) { c.status = 'exited'; } // its CLI went with the old daemon's answer
    keep.push(c);
    log(`container ${c.name}: re-attached`);
  }
  records.state.containers = keep.filter((c) => c.mode !== 'container' || keep.some((o) => o.name === c.sharedWith));
}
