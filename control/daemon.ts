// `vsw daemon`: start the engine (state, dataplane workers, default network), serve the API
// on the Unix socket, and stop cleanly on SIGINT/SIGTERM: the API closes, the workers stop,
// the TAP ports vanish with their fds, the socket file and the state lock are removed.
// Containers stay (their namespaces are the user's), and are re-attached at the next start.

import type { DaemonOptions } from './types';
// Named by file: a stale dist/control/engine.js or api.js from an older build would
// otherwise be loaded instead of the folder.
import { VswEngine } from './engine/index';
import { startApi } from './api/index';
import { initMountNamespace } from './netns';
import { buildMetricsRegistry, startMetricsServer, type MetricsServer } from './metrics';
import { DEFAULT_PLUGIN_DIR, startDockerPlugin, type DockerPlugin } from './docker/index';

export async function runDaemon(opts: DaemonOptions): Promise<void> {
  const log = (line: string): void => { process.stderr.write(`vsw: ${line}\n`); };
  // First of all, while whoever started us may still be there: the mount namespace where
  // container namespaces must be made to be seen by the user (control/netns.ts).
  log(initMountNamespace());
  // --metrics listens first: an address in use fails the start before anything (not even
  // the state dir) is created. Scrapes read the engine once it exists.
  let created: VswEngine | undefined;
  let metrics: MetricsServer | undefined;
  if (opts.metrics !== undefined) {
    metrics = await startMetricsServer(opts.metrics, buildMetricsRegistry(() => {
      if (!created) throw new Error('the daemon is starting');
      return created;
    }));
  }
  let engine: VswEngine;
  try {
    engine = created = new VswEngine(opts);
    await engine.start(log);
  } catch (e) {
    await metrics?.close();
    throw e;
  }
  let api: { close(): Promise<void> };
  try {
    api = await startApi(engine, opts.socket);
  } catch (e) {
    await engine.stop();
    await metrics?.close();
    throw e;
  }
  let plugin: DockerPlugin | undefined;
  if (opts.dockerPlugin !== undefined) {
    try {
      plugin = await startDockerPlugin(engine, {
        name: opts.dockerPlugin, dir: opts.dockerPluginDir ?? DEFAULT_PLUGIN_DIR, stateDir: opts.stateDir, dockerHost: opts.dockerHost,
      }, log);
    } catch (e) {
      await api.close();
      await engine.stop();
      await metrics?.close();
      throw e;
    }
  }
  const def = engine.inspectNetwork(engine.info().defaultNetwork);
  log(`daemon ready (pid ${process.pid}): socket ${opts.socket}, state ${opts.stateDir}, ${opts.workers} worker(s)${opts.busyPollUs ? `, busy-poll ${opts.busyPollUs} us` : ''}`);
  if (metrics) log(`metrics: ${metrics.url} (Prometheus text format)`);
  log(`default network '${def.name}': subnet ${def.subnet}, gateway ${def.gateway}, host port ${def.hostPort?.name} ${def.hostPort?.ip}`);

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (sig: string): void => {
      if (stopping) return;
      stopping = true;
      log(`${sig}: stopping`);
      void (async () => {
        try { await plugin?.close(); } catch (e) { log(`closing the docker plugin: ${(e as Error).message}`); }
        try { await api.close(); } catch (e) { log(`closing the API: ${(e as Error).message}`); }
        try { await metrics?.close(); } catch (e) { log(`closing the metrics server: ${(e as Error).message}`); }
        try { await engine.stop(); } catch (e) { log(`stopping the dataplane: ${(e as Error).message}`); }
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
        log('stopped');
        resolve();
      })();
    };
    const onInt = (): void => stop('SIGINT');
    const onTerm = (): void => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
}
