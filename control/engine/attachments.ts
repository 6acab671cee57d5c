// Attachments: endpoints on vsw networks for sandboxes another runtime made (Docker's
// remote driver, control/docker/; the CNI plugin). Each sandbox is a container record of
// mode 'docker' or 'cni' (named as the runtime names it, so vsw ps, fdb, stats, trace,
// capture, events and metrics show it like any container); each attachment is one of its
// endpoint records, with an `attachment` part keyed by the runtime's endpoint id.
//
// Create: the checks first (network, address, MAC, names, published ports), then the
// intent (the endpoint saved as 'creating', its container too when new), then the veth:
// with `netns` its inner end goes into the sandbox and is configured there (address, MAC,
// MTU, up, default route); without it (Docker) the inner end stays down in the daemon's
// namespace with the MAC set, for the runtime to move and configure. Then the host end is a
// switch port, the record is 'created' and saved. A crash before that is undone at the next
// start (recovery.ts recoverAttachments); a failure is undone at once.
// The same endpoint posted again with the same fields is answered with what exists (the
// runtimes retry); with other fields it is refused. Remove deletes the veth (its peer goes
// with it), the port, the names and the published ports; the container goes with its last
// endpoint. `vsw rm`, `network rm` and `network disconnect` refuse them: the runtime owns
// them (containers.ts, networks.ts).

import * as crypto from 'node:crypto';
import { ATTACHMENT_OWNERS, type AttachmentCreate, type AttachmentInfo, type PortMapping } from '../types';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../errors';
import type { EventBus } from '../events';
import * as ipam from '../ipam';
import * as netns from '../netns';
import type { Router } from '../router';
import type { AttachmentRecord, ContainerRecord, EndpointRecord, NetworkRecord, Records, Saver } from './records';
import type { Endpoints } from './endpoints';
import { checkDnsNames } from './names';
import { validAliases } from './containers';
import { normMac } from './networks';
import { armedWhile, crashPoint } from '../crash';

export interface AttachmentDeps {
  records: Records;
  endpoints: Pick<Endpoints, 'open' | 'unplug'>;
  events: Pick<EventBus, 'emit'>;
  router: Pick<Router, 'checkPublish'>;
  store: Saver;
  syncRouter(): Promise<void>;
}

type Attached = EndpointRecord & { attachment: AttachmentRecord };

export class Attachments {
  constructor(private readonly d: AttachmentDeps) {}

  list(): AttachmentInfo[] {
    return this.d.records.state.containers.flatMap((c) => c.endpoints
      .filter((e): e is Attached => e.attachment?.status === 'created')
      .map((e) => this.info(c, e)));
  }

  inspect(endpoint: string): AttachmentInfo {
    const { c, e } = this.find(endpoint);
    return this.info(c, e);
  }

  private find(endpoint: string): { c: ContainerRecord; e: Attached } {
    const found = this.d.records.attachment(endpoint);
    if (!found || found.e.attachment.status !== 'created') throw new NotFoundError(`attachment '${endpoint}' not found`);
    return found;
  }

  info(c: ContainerRecord, e: Attached): AttachmentInfo {
    const n = this.d.records.network(e.network);
    const a = e.attachment;
    return {
      owner: c.mode as AttachmentInfo['owner'], endpoint: a.endpoint, sandbox: c.sandbox ?? '', name: c.name,
      network: e.network, ip: e.ip, prefixLen: ipam.parseCidr(n.subnet, 32).prefixLen, gateway: n.gateway, mac: e.mac,
      mtu: a.mtu, hostIf: e.hostIf, innerIf: e.innerIf, ...(a.netns !== undefined ? { netns: a.netns } : {}),
      aliases: e.aliases ?? [], publish: a.publish ?? [],
    };
  }

  async create(spec: AttachmentCreate): Promise<{ attachment: AttachmentInfo; created: boolean }> {
    const { records } = this.d;
    checkSpec(spec);
    const had = records.attachment(spec.endpoint);
    if (had) return { attachment: this.same(had.c, had.e, spec), created: false };
    const n = records.network(spec.network);
    const aliases = validAliases(spec.aliases);
    const publish = spec.publish ?? [];
    let c = records.state.containers.find((x) => x.sandbox === spec.sandbox && x.mode === spec.owner);
    if (c && c.name !== spec.name) {
      throw new ConflictError(`sandbox '${spec.sandbox}' is container '${c.name}' in vsw, not '${spec.name}'`);
    }
    if (!c) {
      ipam.validName(spec.name, 'container name');
      const other = records.state.containers.find((x) => x.name === spec.name);
      if (other) throw new ConflictError(`container '${spec.name}' already exists${other.mode !== spec.owner ? ` (a ${other.mode} container)` : ` (sandbox '${other.sandbox}')`}`);
    } else if (c.endpoints.some((x) => x.network === n.name)) {
      throw new ConflictError(`container '${c.name}' is already connected to network '${n.name}'`);
    }
    checkDnsNames(spec.name, [...(c?.endpoints ?? []), { network: n.name, aliases }], records.state.containers);
    this.d.router.checkPublish(spec.name, { name: n.name, internal: n.internal ?? false }, publish);
    const ip = this.address(n, spec.ip);
    const mac = spec.mac !== undefined ? normMac(spec.mac) : ipam.macFromIp(ip);
    this.checkMac(n, mac);
    const mtu = spec.mtu ?? n.mtu;
    if (spec.netns !== undefined && !netns.netnsExists(spec.netns)) {
      throw new InvalidArgumentError(`netns ${spec.netns} does not exist`);
    }
    const hostIf = netns.hostIfName(`attachment/${spec.endpoint}`);
    const innerIf = spec.ifname ?? (spec.netns !== undefined ? await netns.nextInnerIfName(spec.netns) : netns.hostIfName(`attachment/${spec.endpoint}`, 'vsi'));
    const e: Attached = {
      network: n.name, ip, mac, hostIf, innerIf, ...(aliases.length > 0 ? { aliases } : {}),
      attachment: {
        endpoint: spec.endpoint, status: 'creating', mtu, defaultRoute: spec.defaultRoute !== false,
        ...(spec.netns !== undefined ? { netns: spec.netns } : {}), ...(publish.length > 0 ? { publish: publish.map((m) => ({ ...m })) } : {}),
      },
    };
    const fresh = !c;
    if (!c) {
      c = {
        name: spec.name, id: crypto.randomBytes(6).toString('hex'), mode: spec.owner, netns: spec.netns ?? '', sandbox: spec.sandbox,
        endpoints: [], cmd: [], detach: false, rm: false, status: 'creating', created: new Date().toISOString(),
      };
      records.state.containers.push(c);
    }
    const owner = c;
    // The intent first: a crash from here on is undone at the next start (recovery.ts).
    owner.endpoints.push(e);
    this.d.store.save();
    try {
      await armedWhile(() => this.make(owner, n, e));
    } catch (err) {
      await this.d.endpoints.unplug(owner, e).catch(() => undefined);
      owner.endpoints = owner.endpoints.filter((x) => x !== e);
      if (fresh) records.state.containers = records.state.containers.filter((x) => x !== owner);
      this.d.store.save();
      throw err;
    }
    e.attachment.status = 'created';
    owner.status = 'running';
    this.d.store.save();
    await this.d.syncRouter();
    if (fresh) this.d.events.emit('container-start', { container: owner.name, mode: owner.mode, network: n.name, ip });
    return { attachment: this.info(owner, e), created: true };
  }

  /** The veth, its inner end configured when it is in the sandbox, the host end a port. */
  private async make(c: ContainerRecord, n: NetworkRecord, e: Attached): Promise<void> {
    const a = e.attachment;
    crashPoint('after-intent');
    await netns.createVeth(e.hostIf, a.netns ?? '', a.mtu, e.innerIf, undefined, a.netns === undefined ? e.mac : undefined);
    if (a.netns !== undefined) {
      await netns.configureEndpoint(a.netns, e.innerIf, {
        mac: e.mac, ip: e.ip, prefixLen: ipam.parseCidr(n.subnet, 32).prefixLen, gateway: n.gateway, mtu: a.mtu,
        defaultRoute: a.defaultRoute,
      });
    }
    await this.d.endpoints.open(c, n, e);
    crashPoint('before-save');
  }

  /** The existing attachment when `spec` asks for what it is; ConflictError naming the first difference. */
  private same(c: ContainerRecord, e: Attached, spec: AttachmentCreate): AttachmentInfo {
    const info = this.info(c, e);
    const diff = (field: string, want: unknown, have: unknown): void => {
      throw new ConflictError(`attachment '${spec.endpoint}' already exists with ${field} ${JSON.stringify(have)}, not ${JSON.stringify(want)}: remove it first`);
    };
    if (spec.owner !== info.owner) diff('owner', spec.owner, info.owner);
    if (spec.sandbox !== info.sandbox) diff('sandbox', spec.sandbox, info.sandbox);
    if (spec.name !== info.name) diff('name', spec.name, info.name);
    if (spec.network !== info.network) diff('network', spec.network, info.network);
    if (spec.ip !== undefined && spec.ip !== '' && spec.ip !== info.ip) diff('ip', spec.ip, info.ip);
    if (spec.mac !== undefined && normMac(spec.mac) !== info.mac) diff('mac', spec.mac, info.mac);
    if (spec.ifname !== undefined && spec.ifname !== info.innerIf) diff('ifname', spec.ifname, info.innerIf);
    if (spec.netns !== info.netns) diff('netns', spec.netns ?? null, info.netns ?? null);
    if (spec.defaultRoute !== undefined && spec.defaultRoute !== e.attachment.defaultRoute) diff('defaultRoute', spec.defaultRoute, e.attachment.defaultRoute);
    if (spec.mtu !== undefined && spec.mtu !== info.mtu) diff('mtu', spec.mtu, info.mtu);
    if (spec.aliases !== undefined && !sameSet(validAliases(spec.aliases), info.aliases)) diff('aliases', spec.aliases, info.aliases);
    if (spec.publish !== undefined && !samePorts(spec.publish, info.publish)) diff('publish', spec.publish, info.publish);
    return info;
  }

  async remove(endpoint: string): Promise<void> {
    const { records } = this.d;
    const { c, e } = this.find(endpoint);
    await this.d.endpoints.unplug(c, e);
    c.endpoints = c.endpoints.filter((x) => x !== e);
    const last = c.endpoints.length === 0;
    if (last) records.state.containers = records.state.containers.filter((x) => x !== c);
    this.d.store.save();
    await this.d.syncRouter();
    if (last) this.d.events.emit('container-remove', { container: c.name });
  }

  async publish(endpoint: string, ports: PortMapping[]): Promise<AttachmentInfo> {
    const { c, e } = this.find(endpoint);
    const n = this.d.records.network(e.network);
    const others = c.endpoints.filter((x) => x !== e).flatMap((x) => x.attachment?.publish ?? []);
    this.d.router.checkPublish(c.name, { name: n.name, internal: n.internal ?? false }, [...ports, ...others]);
    if (ports.length > 0) e.attachment.publish = ports.map((m) => ({ ...m }));
    else delete e.attachment.publish;
    this.d.store.save();
    await this.d.syncRouter();
    return this.info(c, e);
  }

  /** The requested address (checked free) or the next free one of the network. */
  private address(n: NetworkRecord, requested: string | undefined): string {
    const used = new Map<string, string>();
    for (const o of this.d.records.state.containers) for (const x of o.endpoints) if (x.network === n.name) used.set(x.ip, o.name);
    return ipam.allocateIp(n, used, requested);
  }

  /** A MAC another endpoint of the network has would make the switch learn it on two ports. */
  private checkMac(n: NetworkRecord, mac: string): void {
    for (const o of this.d.records.state.containers) {
      for (const x of o.endpoints) {
        if (x.network === n.name && x.mac === mac) throw new ConflictError(`MAC ${mac} is already used by container '${o.name}' on network '${n.name}'`);
      }
    }
  }
}

/** The fields the engine checks itself (the API checked their JSON types: request.ts). */
function checkSpec(spec: AttachmentCreate): void {
  if (!ATTACHMENT_OWNERS.includes(spec.owner)) throw new InvalidArgumentError(`owner '${String(spec.owner)}': expected ${ATTACHMENT_OWNERS.join(' or ')}`);
  for (const k of ['endpoint', 'sandbox', 'name', 'network'] as const) {
    if (typeof spec[k] !== 'string' || spec[k] === '') throw new InvalidArgumentError(`field '${k}' is required`);
  }
  if (spec.endpoint.length > 256) throw new InvalidArgumentError('field \'endpoint\' is longer than 256 characters');
  if (spec.ifname !== undefined && (!/^[^/\s:]{1,15}$/.test(spec.ifname) || spec.ifname === '.' || spec.ifname === '..')) {
    throw new InvalidArgumentError(`ifname '${spec.ifname}': an interface name is 1 to 15 characters, without '/', ':' or spaces`);
  }
  if (spec.netns !== undefined && !spec.netns.startsWith('/')) throw new InvalidArgumentError(`netns '${spec.netns}' must be an absolute path`);
  if (spec.mtu !== undefined && (!Number.isInteger(spec.mtu) || spec.mtu < 68 || spec.mtu > 65535)) {
    throw new InvalidArgumentError(`mtu ${spec.mtu}: expected 68 to 65535`);
  }
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

function samePorts(a: PortMapping[], b: PortMapping[]): boolean {
  const key = (m: PortMapping): string => `${m.hostIp}|${m.hostPort}|${m.containerPort}|${m.proto}`;
  return sameSet(a.map(key), b.map(key));
}
