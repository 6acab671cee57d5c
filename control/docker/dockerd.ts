// Names from dockerd's API (`vsw daemon --docker-host unix:///PATH`): Docker tells its
// network driver ids only, so the plugin asks dockerd for a network's name (once it has
// stored the network, right after CreateNetwork is answered) and for a container's (Join
// carries only the SandboxKey, named after the sandbox, not the container: see
// containerFor). Only the container list is read, dockerd's snapshot, which takes no
// container lock (inspecting a container being started or connected would wait for the
// Join we are answering). Any failure (no answer within the timeout,
// an unknown id) gives undefined, and the caller uses its fallback name.

import * as http from 'node:http';

export class Dockerd {
  readonly socketPath: string;

  constructor(host: string, private readonly timeoutMs = 2000) {
    this.socketPath = host.startsWith('unix://') ? host.slice('unix://'.length) : host;
  }

  private get(path: string): Promise<unknown> {
    return new Promise((resolve) => {
      const req = http.get({ socketPath: this.socketPath, path, agent: false, timeout: this.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode !== 200) return resolve(undefined);
          try { resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))); } catch { resolve(undefined); }
        });
        res.on('error', () => resolve(undefined));
      });
      req.on('timeout', () => { req.destroy(); resolve(undefined); });
      req.on('error', () => resolve(undefined));
    });
  }

  /** The network's name; dockerd stores a network only after its driver answered: retried a few times. */
  async networkName(id: string, tries = 20): Promise<string | undefined> {
    for (let i = 0; i < tries; i++) {
      const n = await this.get(`/networks/${encodeURIComponent(id)}`) as { Name?: unknown; Id?: unknown } | undefined;
      if (n && n.Id === id && typeof n.Name === 'string') return n.Name;
      await new Promise((r) => setTimeout(r, 100));
    }
    return undefined;
  }

  /** The name of the container whose endpoint on `network` is `endpoint` (recorded once it started). */
  async containerOf(network: string, endpoint: string): Promise<string | undefined> {
    const list = await this.get('/containers/json?all=1') as ListedContainer[] | undefined;
    const c = Array.isArray(list) ? list.find((x) => x.NetworkSettings?.Networks?.[network]?.EndpointID === endpoint) : undefined;
    const name = c?.Names?.[0];
    return typeof name === 'string' ? name.replace(/^\//, '') : undefined;
  }

  /**
   * The name of the container a Join is for. Docker's snapshot lists the container being
   * started as 'created', with an entry for the network whose EndpointID is still empty (or,
   * once recorded, ours): one such container is the answer; none or several (two starting
   * at once) give undefined.
   */
  async containerFor(network: string, endpoint: string): Promise<string | undefined> {
    const list = await this.get('/containers/json?all=1') as ListedContainer[] | undefined;
    if (!Array.isArray(list)) return undefined;
    const on = (c: ListedContainer): string | undefined => c.NetworkSettings?.Networks?.[network]?.EndpointID;
    const exact = list.find((c) => on(c) === endpoint);
    const fresh = list.filter((c) => on(c) === '' && c.State !== 'running');
    const c = exact ?? (fresh.length === 1 ? fresh[0] : undefined);
    const name = c?.Names?.[0];
    return typeof name === 'string' ? name.replace(/^\//, '') : undefined;
  }
}

interface ListedContainer {
  Names?: string[];
  State?: string;
  NetworkSettings?: { Networks?: Record<string, { EndpointID?: string }> };
}
