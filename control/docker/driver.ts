// Docker's NetworkDriver (libnetwork remote driver, Docker 20.10) over the engine:
//
//   GetCapabilities   {Scope: 'local', ConnectivityScope: 'local'}
//   CreateNetwork     IPv4Data[0] (pool, gateway) and the -o options (OPT_MTU, vlan,
//                     internal, icc, dns-order; --internal too) are checked at once, so a
//                     refusal reaches `docker network create` and nothing is kept; then the
//                     vsw network is made, named as Docker names it when dockerd's API is
//                     known (--docker-host: Docker tells a driver only the NetworkID, and
//                     knows the name once it has stored the network, after our answer), else
//                     `docker-` + 12 characters of the NetworkID.
//   DeleteNetwork     the vsw network goes (refused while vsw's own containers use it).
//   CreateEndpoint    remembers Docker's address; answers the MAC only when Docker left it
//                     empty (vsw's MAC for the address, which is Docker's own 02:42 + IP).
//   Join              the veth, through an attachment (control/engine/attachments.ts) named
//                     after the Docker container (resolved from dockerd, else `docker-` +
//                     the 12 characters Docker's SandboxKey ends with); answers InterfaceName
//                     {SrcName, DstPrefix: 'eth'} and the gateway (so Docker adds no
//                     docker_gwbridge).
//   Leave             acknowledged (the veth goes at DeleteEndpoint, as Docker expects).
//   DeleteEndpoint    the attachment goes (gone already counts as done).
//   ProgramExternalConnectivity / RevokeExternalConnectivity
//                     com.docker.network.portmap becomes the attachment's published ports.
//   EndpointOperInfo, DiscoverNew, DiscoverDelete   acknowledged.

import type { DnsOrder, Engine, PortMapping } from '../types';
import { DNS_ORDERS } from '../types';
import * as ipam from '../ipam';
import { checkVid } from '../vlan';
import { VswError } from '../errors';
import {
  DRIVER_OPTIONS, OPT_GENERIC, OPT_INTERNAL, OPT_IPV6, OPT_MTU, OPT_PORTMAP, PluginError,
  type CreateEndpointRequest, type CreateNetworkRequest, type DockerPortBinding, type JoinRequest,
} from './protocol';
import type { DockerNetworkRecord, DockerStore } from './state';
import type { DockerIpam } from './ipam';
import type { Dockerd } from './dockerd';

type Body = Record<string, unknown>;

export type DriverEngine = Pick<Engine, 'createNetwork' | 'removeNetwork' | 'listNetworks' | 'info' | 'createAttachment' | 'listAttachments' | 'renameSandbox'
  | 'removeAttachment' | 'publishAttachment' | 'inspectAttachment'>;

function bool(key: string, v: string): boolean {
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new PluginError(`vsw: option ${key}=${v}: expected true or false`);
}

function isNotFound(e: unknown): boolean {
  return e instanceof VswError && e.code === 'E_NOT_FOUND';
}

export class DockerDriver {
  /** Networks being made (CreateNetwork answered, the vsw network not yet there), by id. */
  private readonly making = new Map<string, Promise<string>>();

  constructor(private readonly engine: DriverEngine, private readonly store: DockerStore, private readonly ipam: DockerIpam,
    private readonly dockerd: Dockerd | undefined, private readonly log: (line: string) => void = () => undefined) {}

  async handle(call: string, b: Body): Promise<unknown> {
    switch (call) {
      case 'GetCapabilities': return { Scope: 'local', ConnectivityScope: 'local' };
      case 'CreateNetwork': return this.createNetwork(b as unknown as CreateNetworkRequest);
      case 'DeleteNetwork': return this.deleteNetwork(String(b.NetworkID ?? ''));
      case 'CreateEndpoint': return this.createEndpoint(b as unknown as CreateEndpointRequest);
      case 'EndpointOperInfo': return { Value: {} };
      case 'DeleteEndpoint': return this.deleteEndpoint(String(b.EndpointID ?? ''));
      case 'Join': return this.join(b as unknown as JoinRequest);
      case 'Leave': return {};
      case 'ProgramExternalConnectivity': return this.publish(String(b.EndpointID ?? ''), b.Options as Body | undefined);
      case 'RevokeExternalConnectivity': return this.publish(String(b.EndpointID ?? ''), undefined);
      case 'DiscoverNew': case 'DiscoverDelete': return {};
      default: return undefined;
    }
  }

  // ---- networks

  private createNetwork(r: CreateNetworkRequest): unknown {
    if (typeof r.NetworkID !== 'string' || r.NetworkID === '') throw new PluginError('vsw: CreateNetwork without a NetworkID');
    const had = this.store.network(r.NetworkID);
    if (had) return {}; // a retry
    const opts = r.Options ?? {};
    if (opts[OPT_IPV6] === true || (r.IPv6Data ?? []).length > 0) throw new PluginError('vsw: IPv6 is not supported (vsw switches IPv4): create the network without --ipv6');
    const v4 = r.IPv4Data ?? [];
    if (v4.length !== 1) throw new PluginError(`vsw: a vsw network has one IPv4 subnet (Docker gave ${v4.length})`);
    const generic = (opts[OPT_GENERIC] ?? {}) as Record<string, string>;
    const rec: DockerNetworkRecord = {
      id: r.NetworkID, subnet: v4[0].Pool, gateway: (v4[0].Gateway ?? '').split('/')[0] || ipam.firstUsable(v4[0].Pool),
      internal: opts[OPT_INTERNAL] === true, icc: true,
    };
    for (const [k, v] of Object.entries(generic)) {
      const val = String(v);
      switch (k) {
        case OPT_MTU: {
          const mtu = Number(val);
          if (!/^\d+$/.test(val) || mtu < ipam.MIN_MTU || mtu > ipam.MAX_MTU) throw new PluginError(`vsw: option ${OPT_MTU}=${val}: expected ${ipam.MIN_MTU} to ${ipam.MAX_MTU}`);
          rec.mtu = mtu;
          break;
        }
        case 'vlan':
          if (!/^\d+$/.test(val)) throw new PluginError(`vsw: option vlan=${val}: expected a VLAN id, 1 to 4094`);
          try { rec.vlan = checkVid(Number(val)); } catch (e) { throw new PluginError(`vsw: option vlan=${val}: ${(e as Error).message}`); }
          break;
        case 'internal': rec.internal = rec.internal || bool(k, val); break;
        case 'icc': rec.icc = bool(k, val); break;
        case 'dns-order':
          if (!DNS_ORDERS.includes(val as DnsOrder)) throw new PluginError(`vsw: option dns-order=${val}: expected ${DNS_ORDERS.join(', ')}`);
          rec.dnsOrder = val as DnsOrder;
          break;
        default:
          throw new PluginError(`vsw: unknown option '${k}' (vsw networks take -o ${DRIVER_OPTIONS.join(', -o ')})`);
      }
    }
    // The subnet and gateway checks of a vsw network, now, so that a refusal changes nothing.
    const others = this.ipam.taken().filter((t) => t.subnet !== rec.subnet || !t.name.startsWith('docker pool'));
    const pending = this.store.state.networks.filter((n) => n.vsw === undefined).map((n) => ({ name: `docker network ${n.id.slice(0, 12)}`, subnet: n.subnet }));
    try {
      ipam.normalizeNetwork({ name: 'docker-network', subnet: rec.subnet, gateway: rec.gateway, mtu: rec.mtu }, { existingSubnets: [...others, ...pending], usedPrefixes: [] });
    } catch (e) {
      throw new PluginError(`vsw: ${(e as Error).message}`);
    }
    if (rec.vlan !== undefined) {
      const same = this.engine.listNetworks().find((n) => n.vlan === rec.vlan);
      if (same) throw new PluginError(`vsw: VLAN ${rec.vlan} is already network '${same.name}' (a VLAN is one network)`);
    }
    this.store.state.networks.push(rec);
    this.store.save();
    // Made once Docker has the network (and its name): right after this answer.
    setImmediate(() => { void this.vswNetwork(rec.id).catch((e: Error) => this.log(`docker network ${rec.id.slice(0, 12)}: ${e.message}`)); });
    return {};
  }

  /** The vsw network of a Docker network: made (once) when it is not there yet. */
  vswNetwork(id: string): Promise<string> {
    const rec = this.store.network(id);
    if (!rec) return Promise.reject(new PluginError(`vsw: no network ${id} (it was not created with the vsw driver, or vsw lost it)`));
    if (rec.vsw !== undefined) return Promise.resolve(rec.vsw);
    let p = this.making.get(id);
    if (!p) {
      p = this.makeNetwork(rec).finally(() => this.making.delete(id));
      this.making.set(id, p);
    }
    return p;
  }

  private async makeNetwork(rec: DockerNetworkRecord): Promise<string> {
    const fallback = `docker-${rec.id.slice(0, 12)}`;
    const taken = new Set(this.engine.listNetworks().map((n) => n.name.toLowerCase()));
    const dockerName = await this.dockerd?.networkName(rec.id);
    if (dockerName !== undefined) rec.dockerName = dockerName;
    let name = dockerName ?? fallback;
    if (!ipam.isValidName(name) || taken.has(name.toLowerCase()) || ['none', 'host', 'uplink', 'trunk', 'bridge'].includes(name)) name = fallback;
    const n = await this.engine.createNetwork({
      name, subnet: rec.subnet, gateway: rec.gateway, internal: rec.internal, icc: rec.icc,
      ...(rec.mtu !== undefined ? { mtu: rec.mtu } : {}), ...(rec.vlan !== undefined ? { vlan: rec.vlan } : {}),
      ...(rec.dnsOrder !== undefined ? { dnsOrder: rec.dnsOrder } : {}),
    });
    rec.vsw = n.name;
    this.store.save();
    this.log(`docker network ${rec.id.slice(0, 12)} is vsw network '${n.name}' (${n.subnet})`);
    return n.name;
  }

  private async deleteNetwork(id: string): Promise<unknown> {
    const rec = this.store.network(id);
    if (!rec) return {};
    const name = await this.making.get(id)?.catch(() => undefined) ?? rec.vsw;
    if (name !== undefined) {
      try {
        await this.engine.removeNetwork(name);
      } catch (e) {
        if (!isNotFound(e)) throw new PluginError(`vsw: ${(e as Error).message}`);
      }
    }
    this.store.state.networks = this.store.state.networks.filter((n) => n.id !== id);
    this.store.state.endpoints = this.store.state.endpoints.filter((e) => e.network !== id);
    this.store.save();
    return {};
  }

  // ---- endpoints

  private async createEndpoint(r: CreateEndpointRequest): Promise<unknown> {
    const net = this.store.network(r.NetworkID);
    if (!net) throw new PluginError(`vsw: no network ${r.NetworkID} (it was not created with the vsw driver, or vsw lost it)`);
    if (r.Interface?.AddressIPv6) throw new PluginError('vsw: IPv6 addresses are not supported');
    const addr = r.Interface?.Address;
    if (!addr) throw new PluginError('vsw: an endpoint needs an IPv4 address from IPAM');
    await this.vswNetwork(net.id).catch((e: Error) => { throw new PluginError(`vsw: the network could not be made: ${e.message}`); });
    const ip = addr.split('/')[0];
    const given = r.Interface?.MacAddress;
    const mac = given || ipam.macFromIp(ip);
    this.store.state.endpoints = this.store.state.endpoints.filter((e) => e.endpoint !== r.EndpointID);
    this.store.state.endpoints.push({ network: net.id, endpoint: r.EndpointID, ip, mac });
    this.store.save();
    return { Interface: given ? {} : { MacAddress: mac } };
  }

  private async join(r: JoinRequest): Promise<unknown> {
    const ep = this.store.endpoint(r.EndpointID);
    if (!ep) throw new PluginError(`vsw: no endpoint ${r.EndpointID}`);
    const network = await this.vswNetwork(ep.network);
    const { name, sure } = await this.containerName(r, ep.network);
    try {
      const { attachment: a } = await this.engine.createAttachment({
        owner: 'docker', endpoint: r.EndpointID, sandbox: r.SandboxKey, name, network, ip: ep.ip, mac: ep.mac,
      });
      if (!sure && this.dockerd) setImmediate(() => { void this.nameLater(r, ep.network); });
      return { InterfaceName: { SrcName: a.innerIf, DstPrefix: 'eth' }, Gateway: a.gateway, StaticRoutes: [], DisableGatewayService: false };
    } catch (e) {
      throw new PluginError(`vsw: ${(e as Error).message}`);
    }
  }

  /**
   * A sandbox vsw knows already (another network of the container) keeps its name; else
   * dockerd's (dockerd.ts containerFor), else `docker-` + the sandbox's 12 characters.
   */
  private async containerName(r: JoinRequest, network: string): Promise<{ name: string; sure: boolean }> {
    const known = this.engine.listAttachments().find((a) => a.owner === 'docker' && a.sandbox === r.SandboxKey);
    if (known) return { name: known.name, sure: true };
    const dockerName = await this.dockerNetworkName(network);
    const found = dockerName !== undefined ? await this.dockerd?.containerFor(dockerName, r.EndpointID) : undefined;
    const short = (r.SandboxKey ?? '').split('/').pop() ?? '';
    return { name: found ?? `docker-${/^[0-9a-f]{12}$/.test(short) ? short : r.EndpointID.slice(0, 12)}`, sure: found !== undefined };
  }

  private async dockerNetworkName(network: string): Promise<string | undefined> {
    const rec = this.store.network(network);
    return rec?.dockerName ?? (this.dockerd ? await this.dockerd.networkName(network, 1) : undefined);
  }

  /**
   * A container named by its fallback (dockerd did not say at Join: it answers its API only
   * once it has restarted its containers, or two started at once) gets its Docker name as
   * soon as dockerd lists it with this endpoint (tried for a minute).
   */
  private async nameLater(r: JoinRequest, network: string): Promise<void> {
    for (let i = 0; i < 120; i++) {
      await new Promise((res) => setTimeout(res, 500));
      if (!this.store.endpoint(r.EndpointID)) return; // gone meanwhile
      const dockerName = await this.dockerNetworkName(network);
      const name = dockerName !== undefined ? await this.dockerd?.containerOf(dockerName, r.EndpointID) : undefined;
      if (name === undefined) continue;
      try {
        await this.engine.renameSandbox('docker', r.SandboxKey, name);
        this.log(`docker container ${name}: named (was ${r.SandboxKey.split('/').pop()})`);
      } catch (e) {
        this.log(`docker container ${name}: keeps its vsw name: ${(e as Error).message}`);
      }
      return;
    }
  }

  private async deleteEndpoint(id: string): Promise<unknown> {
    try {
      await this.engine.removeAttachment(id);
    } catch (e) {
      if (!isNotFound(e)) throw new PluginError(`vsw: ${(e as Error).message}`);
    }
    this.store.state.endpoints = this.store.state.endpoints.filter((e) => e.endpoint !== id);
    this.store.save();
    return {};
  }

  private async publish(endpoint: string, opts: Body | undefined): Promise<unknown> {
    const ports = portMappings(opts?.[OPT_PORTMAP]);
    try {
      await this.engine.publishAttachment(endpoint, ports);
    } catch (e) {
      if (isNotFound(e) && ports.length === 0) return {};
      throw new PluginError(`vsw: ${(e as Error).message}`);
    }
    return {};
  }
}

/** com.docker.network.portmap as vsw published ports (a host port range: its first port). */
export function portMappings(v: unknown): PortMapping[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new PluginError(`vsw: ${OPT_PORTMAP} must be a list`);
  // An IPv6 host address (Docker may add '::' beside 0.0.0.0) is not vsw's to listen on.
  return (v as DockerPortBinding[]).filter((b) => !(b.HostIP ?? '').includes(':')).map((b) => {
    const proto = b.Proto === 6 ? 'tcp' : b.Proto === 17 ? 'udp' : undefined;
    if (!proto) throw new PluginError(`vsw: published ports are TCP or UDP (protocol ${b.Proto})`);
    if (!b.HostPort) throw new PluginError(`vsw: -p ${b.Port}/${proto} without a host port is not supported: give one (-p HOSTPORT:${b.Port})`);
    return { hostIp: b.HostIP || '0.0.0.0', hostPort: b.HostPort, containerPort: b.Port, proto };
  });
}
