// End to end: `vsw events` streams what changes: a new container's port coming up and the
// container starting, its MAC learned once it talks, and the port going down when it is
// removed; --format json gives one object per line.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VswEvent } from '../../control/types';
import { cleanupPrefix, Daemon, execInOpts, isRoot, NEEDS_ROOT, runContainers, runPrefix, startDaemon, waitFor } from '../fixtures/harness';
import { eventsStream } from '../fixtures/topology';

const P = runPrefix('v');
const C1 = `${P}-c1`;
const C2 = `${P}-c2`;

if (!isRoot) console.warn(`test/integration/events.test.ts skipped: ${NEEDS_ROOT}`);

describe.skipIf(!isRoot)('vsw events (root)', () => {
  let d: Daemon;

  beforeAll(async () => {
    d = await startDaemon({ prefix: P, workers: 2 });
  }, 120_000);

  afterAll(async () => {
    if (d) await d.cleanup();
    else await cleanupPrefix(P);
  }, 60_000);

  it('streams port-up, container-start, mac-learned, then port-down and container-remove', async () => {
    const stream = await eventsStream(d, `${P}-probe`);
    const events = (): VswEvent[] => stream.events();
    try {
      const ep = await runContainers(d, [C1, C2]);
      const ping = await execInOpts(C1, ['ping', '-c', '1', '-W', '2', ep[C2].ip], { timeoutMs: 20_000 });
      expect(ping.code).toBe(0);
      await waitFor('mac-learned for c1', () => events().some((e) => e.type === 'mac-learned' && e.mac === ep[C1].mac), { timeoutMs: 5_000 });
      await d.vswOk(['rm', '-f', C1]);
      await waitFor('container-remove for c1', () => events().some((e) => e.type === 'container-remove' && e.container === C1), { timeoutMs: 5_000 });
      const mine = events().filter((e) => e.container === C1);
      // MAC events come on a 200 ms drain, so only these orders are guaranteed.
      const at = (t: string): number => mine.findIndex((e) => e.type === t);
      expect(at('port-up')).toBeLessThan(at('port-down'));
      expect(at('container-start')).toBeLessThan(at('container-remove'));
      expect(at('mac-learned')).toBeLessThan(at('port-down'));
      expect(mine.find((e) => e.type === 'port-up')).toMatchObject({ port: ep[C1].hostIf, network: 'bridge', ip: ep[C1].ip, mac: ep[C1].mac });
      expect(mine.find((e) => e.type === 'mac-learned')).toMatchObject({ network: 'bridge', vlan: 0, port: ep[C1].hostIf });
      expect(mine.map((e) => e.type)).toEqual(expect.arrayContaining(['port-up', 'container-start', 'mac-learned', 'port-down', 'container-remove']));
      for (const e of events()) expect(Number.isNaN(Date.parse(e.time))).toBe(false);
    } finally {
      await stream.stop('SIGINT');
    }
  }, 60_000);
});
