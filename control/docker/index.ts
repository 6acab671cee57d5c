// The Docker plugin (`vsw daemon --docker-plugin [NAME]`): libnetwork's remote NetworkDriver
// and IpamDriver, served on DIR/NAME.sock (default DIR /run/docker/plugins, where dockerd
// looks for plugin sockets; --docker-plugin-dir DIR elsewhere, with a NAME.spec file in
// /etc/docker/plugins naming it). The socket is root-only (0600 in a 0700 directory when
// vsw makes it) and removed at a clean stop. Activation is lazy: dockerd connects at the
// first `docker network create -d NAME`.
//
//   protocol.ts  shapes, option names, error answers
//   driver.ts    NetworkDriver: networks, endpoints, joins, published ports
//   ipam.ts      IpamDriver: pools and addresses
//   state.ts     what the plugin keeps (STATE-DIR/docker/state.json)
//   dockerd.ts   names from dockerd's API (--docker-host)
//
// Each call is POST /Plugin.Activate, /NetworkDriver.CALL or /IpamDriver.CALL with a JSON
// body; an unknown call is a 404 (Docker: "not implemented"), a refusal is {"Err"} (network
// driver) or {"Error"} (IPAM) with the reason, and nothing of a refused call is kept.

import * as http from 'node:http';
import * as path from 'node:path';
import type { Engine } from '../types';
import { VswError } from '../errors';
import { listenUnix } from '../api/index';
import { parseJsonObject, readBody } from '../api/request';
import { isValidName } from '../ipam';
import { DockerDriver, type DriverEngine } from './driver';
import { DockerIpam } from './ipam';
import { DockerStore } from './state';
import { Dockerd } from './dockerd';
import { PLUGIN_CONTENT_TYPE, PluginError } from './protocol';

export const DEFAULT_PLUGIN_DIR = '/run/docker/plugins';
export const DEFAULT_PLUGIN_NAME = 'vsw';

export interface DockerPluginOptions {
  name: string;
  dir: string;
  stateDir: string;
  /** dockerd's API, for names (unix:///PATH or PATH). */
  dockerHost?: string;
}

export interface DockerPlugin {
  readonly socket: string;
  readonly driver: DockerDriver;
  close(): Promise<void>;
}

/** The handlers without the socket (the unit tests call this). */
export function pluginHandlers(engine: DriverEngine & Pick<Engine, 'info'>, store: DockerStore, dockerd?: Dockerd,
  log?: (line: string) => void): { driver: DockerDriver; ipam: DockerIpam; call(p: string, body: Record<string, unknown>): Promise<{ status: number; body: unknown }> } {
  const ipam = new DockerIpam(engine, store);
  const driver = new DockerDriver(engine, store, ipam, dockerd, log);
  const call = async (p: string, body: Record<string, unknown>): Promise<{ status: number; body: unknown }> => {
    const m = /^\/(Plugin|NetworkDriver|IpamDriver)\.(\w+)$/.exec(p);
    if (!m) return { status: 404, body: { Err: `vsw: no such plugin call ${p}` } };
    const [, api, fn] = m;
    const errKey = api === 'IpamDriver' ? 'Error' : 'Err';
    try {
      let out: unknown;
      if (api === 'Plugin') out = fn === 'Activate' ? { Implements: ['NetworkDriver', 'IpamDriver'] } : undefined;
      else if (api === 'NetworkDriver') out = await driver.handle(fn, body);
      else out = ipam.handle(fn, body);
      if (out === undefined) return { status: 404, body: { [errKey]: `vsw: ${api}.${fn} is not implemented` } };
      return { status: 200, body: out };
    } catch (e) {
      const text = e instanceof PluginError ? e.message : `vsw: ${(e as Error).message}`;
      return { status: 200, body: { [errKey]: text } };
    }
  };
  return { driver, ipam, call };
}

export async function startDockerPlugin(engine: Engine, o: DockerPluginOptions, log: (line: string) => void): Promise<DockerPlugin> {
  if (!isValidName(o.name)) throw new VswError(`invalid plugin name '${o.name}'`, 'E_INVALID_ARGUMENT', 400);
  const store = new DockerStore(o.stateDir);
  const { driver, call } = pluginHandlers(engine, store, o.dockerHost ? new Dockerd(o.dockerHost) : undefined, log);
  const socket = path.join(o.dir, `${o.name}.sock`);
  const server = http.createServer((req, res) => {
    void (async () => {
      let status = 200;
      let out: unknown;
      try {
        const text = await readBody(req);
        if (process.env.VSW_DOCKER_DEBUG) log(`plugin ${req.url}: ${text}`);
        const body = parseJsonObject(text);
        ({ status, body: out } = await call(new URL(req.url ?? '/', 'http://docker').pathname, body));
      } catch (e) {
        out = { Err: `vsw: bad request: ${(e as Error).message}` };
      }
      const payload = JSON.stringify(out);
      res.writeHead(status, { 'Content-Type': PLUGIN_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(payload) });
      res.end(payload);
    })();
  });
  const served = await listenUnix(server, socket, { what: 'the Docker plugin socket', owner: `a plugin named '${o.name}' (another vsw daemon?)` });
  log(`docker plugin '${o.name}': ${socket} (NetworkDriver, IpamDriver)${o.dockerHost ? `, names from ${o.dockerHost}` : ''}`);
  return {
    socket,
    driver,
    close: () => served.close(),
  };
}
