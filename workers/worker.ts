// Worker thread entry: attach to the shared tables, tell the main thread we are ready, then
// run the loop until the STOP word is set. See workers/loop.ts.

import { parentPort, workerData, receiveMessageOnPort } from 'node:worker_threads';
import { loadIo } from './io';
import { Fdb } from '../dataplane/tables/fdb';
import { WorkerLoop } from './loop';
import { Neigh } from '../dataplane/tables/neigh';
import { Conntrack } from '../dataplane/tables/conntrack';
import { CaptureRing } from './capture-ring';
import { ctEventWriter, fdbEventWriter } from './events';
import type { FromWorker, ToWorker, WorkerInit } from './protocol';

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (m: FromWorker): void => port.postMessage(m);

try {
  const fdb = new Fdb(init.fdbConfig, init.fdb);
  const events = new CaptureRing(init.events);
  fdb.hook = fdbEventWriter(events);
  const ct = new Conntrack(init.ctConfig, init.ct);
  ct.hook = ctEventWriter(events, ct);
  const loop = new WorkerLoop({
    io: loadIo(),
    fdb,
    ctrl: new Int32Array(init.ctrl),
    stats: new Float64Array(init.stats),
    eventfd: init.eventfd,
    maxPorts: init.maxPorts,
    worker: init.index,
    receive: () => receiveMessageOnPort(port)?.message as ToWorker | undefined,
    reply: post,
    capture: new CaptureRing(init.capture),
    l3: { neigh: new Neigh(init.neighConfig, init.neigh), ct },
    punt: new CaptureRing(init.punt),
  });
  post({ type: 'ready', worker: init.index });
  loop.run();
  post({ type: 'stopped', worker: init.index });
} catch (e) {
  post({ type: 'fatal', worker: init.index, message: (e as Error).stack ?? String(e) });
}
