// Networks: create (name, subnet and VLAN checks, a free id, the host TAP port with the
// subnet's last usable address), remove (refused while containers are attached), and the
// API's views of networks and endpoints. Also what the router is told the networks hold.

import { DNS_ORDERS, type EndpointInfo, type NetworkCreate, type NetworkInfo, type PortInfo } from '../types';
import { ConflictError, InvalidArgumentError } from '../errors';
import type { EventBus } from '../events';
import * as ipam from '../ipam';
import { dnsKey } from './names';
import * as netns from '../netns';
import type { Router, RouterView } from '../router';
import { checkVid } from '../vlan';
import type { DataplaneHost, PortHandle } from '../../workers/host';
import { UPLINK_NET } from '../../dataplane/tables/neigh';
import { isAttached, runtimeName, type ContainerRecord, type EndpointRecord, type NetworkRecord, type Records } from './records';
import type { PortBook } from './ports';
import { checkIpv4, checkVxlan, openOverlay, vxlanInfo, type VxlanHost } from './vxlan';
import { NotFoundError } from '../errors';
import { isMulticast, parseMac } from '../../dataplane/wire/mac';
import { ipValue } from '../../dataplane/vxlan/header';

const RESERVED_NETWORK_NAMES = new Set(['none', 'host', 'uplink', 'trunk']);

export interface NetworkDeps {
  records: Records;
  ports: PortBook;
  host: Pick<DataplaneHost, 'addPort' | 'removePort' | 'portTable' | 'fdb'> & VxlanHost;
  events: Pick<EventBus, 'emit'>;
  router: Pick<Router, 'uplinkSubnet'>;
  /** Trunks follow the VLAN networks. */
  trunks: { sync(): Promise<void> };
}

export class Networks {
  constructor(private readonly d: NetworkDeps) {}

  list(): NetworkInfo[] {
    return this.d.records.state.networks.map((n) => this.info(n));
  }

  inspect(name: string): NetworkInfo {
    return this.info(this.d.records.network(name));
  }

  /** A new network, attached and in the state (not saved yet). */
  async create(spec: NetworkCreate, isDefault: boolean): Promise<NetworkRecord> {
    const { records } = this.d;
    const networks = records.state.networks;
    ipam.validName(spec.name, 'network name');
    if (RESERVED_NETWORK_NAMES.has(spec.name) || spec.name.startsWith('container:')) {
      throw new InvalidArgumentError(`'${spec.name}' is a reserved network name`);
    }
    if (networks.some((n) => n.name === spec.name)) {
      throw new ConflictError(`network '${spec.name}' already exists`);
    }
    // NAME.NETWORK is a DNS name, and DNS compares case-insensitively (engine/names.ts).
    const twin = networks.find((n) => dnsKey(n.name) === dnsKey(spec.name));
    if (twin) {
      throw new ConflictError(`network name '${spec.name}' collides with network '${twin.name}': DNS names (NAME.NETWORK) are case-insensitive, pick another name`);
    }
    if (spec.dnsOrder !== undefined && !DNS_ORDERS.includes(spec.dnsOrder)) {
      throw new InvalidArgumentError(`dns order '${spec.dnsOrder}': expected rotate, random or fixed`);
    }
    if (spec.vlan !== undefined) {
      checkVid(spec.vlan);
      const other = networks.find((n) => n.vlan === spec.vlan);
      if (other) throw new ConflictError(`VLAN ${spec.vlan} is already network '${other.name}' (a VLAN is one network)`);
    }
    // VXLAN: checked before anything is made; its MTU (underlay - 50) is the network's default.
    const vx = spec.vxlan !== undefined ? await checkVxlan(spec.vxlan, spec.mtu, spec.vlan, networks) : undefined;
    if (vx) spec = { ...spec, mtu: vx.mtu };
    const up = this.d.router.uplinkSubnet();
    const norm = ipam.normalizeNetwork(spec, {
      existingSubnets: [
        ...networks.map((n) => ({ name: n.name, subnet: n.subnet })),
        ...(up ? [{ name: 'uplink', subnet: up }] : []),
      ],
      usedPrefixes: await this.foreignPrefixes(),
    });
    let id = 0;
    while (records.state.networks.some((n) => n.id === id)) id++;
    if (id >= UPLINK_NET) throw new ConflictError(`at most ${UPLINK_NET} networks`);
    const rec: NetworkRecord = {
      name: spec.name, id, ...norm, default: isDefault, created: new Date().toISOString(), tap: `vsw${id}`,
      internal: !!spec.internal, icc: spec.icc !== false, dnsOrder: spec.dnsOrder ?? 'rotate',
    };
    if (spec.vlan !== undefined) rec.vlan = spec.vlan;
    if (spec.portSecurity === false) rec.portSecurity = false;
    if (vx) rec.vxlan = vx.rec;
    await this.attach(rec);
    records.state.networks.push(rec);
    await this.d.trunks.sync();
    this.d.events.emit('network-create', { network: rec.name, subnet: rec.subnet, gateway: rec.gateway });
    return rec;
  }

  /** Prefixes used in the daemon's namespace, minus our own TAP subnets. */
  private async foreignPrefixes(): Promise<string[]> {
    const ours = new Set(this.d.records.state.networks.map((n) => ipam.parseCidr(n.subnet, 32).text));
    return (await netns.usedPrefixes()).filter((p) => !ours.has(p));
  }

  /** Create the network's host TAP port: fixed MAC, the host address, up. */
  async attach(n: NetworkRecord, recovering?: (line: string) => void): Promise<void> {
    // Our TAPs vanish with the fd (even on kill -9): an interface by this name is someone
    // else's (another vsw daemon in this namespace?), never ours to delete.
    if (await netns.linkExists(n.tap)) {
      throw new ConflictError(`interface '${n.tap}' for network '${n.name}' already exists in this namespace (another vsw daemon?)`);
    }
    const port = await this.d.host.addPort({ name: n.tap, kind: 'tap', netId: n.id, vlan: n.vlan ?? 0 });
    try {
      const hostIp = ipam.hostPortIp(n.subnet);
      await netns.disableIpv6(n.tap);
      await netns.setMac(n.tap, ipam.macFromIp(hostIp));
      await netns.setMtu(n.tap, n.mtu);
      await netns.addAddress(n.tap, `${hostIp}/${ipam.parseCidr(n.subnet, 32).prefixLen}`);
      await netns.linkUp(n.tap);
      if (n.vxlan) {
        // At a restart, an overlay that cannot open (its underlay address gone, the port
        // taken) leaves the network host-local and says so, rather than stopping the daemon.
        const overlay = await openOverlay(this.d.host, n).catch((e: Error) => {
          if (!recovering) throw e;
          recovering(`network ${n.name}: VXLAN overlay not opened: ${e.message}`);
          return undefined;
        });
        if (overlay) {
          this.d.ports.setOverlay(n.name, overlay);
          for (const f of n.vxlan.fdb ?? []) {
            this.staticEntry(n.id, overlay.id, f.mac, f.vtep);
            if (f.ip !== undefined) this.d.host.vxlanArpStatic(overlay.id, f.mac, f.ip);
          }
        }
      }
    } catch (e) {
      await this.d.host.removePort(port.id);
      throw e;
    }
    this.d.ports.setTap(n.name, port);
    this.d.events.emit('port-up', { port: n.tap, network: n.name, kind: 'tap' });
  }

  /** Remove a network from the dataplane and the state (not saved yet); returns its id. */
  async remove(name: string): Promise<number> {
    const { records, ports, host, events } = this.d;
    const n = records.network(name);
    if (n.default) throw new ConflictError(`'${name}' is the default network and cannot be removed`);
    const users = records.state.containers.filter((c) => c.endpoints.some((e) => e.network === name));
    const foreign = users.find(isAttached);
    if (foreign) {
      throw new ConflictError(`network '${name}' has endpoints of ${runtimeName(foreign.mode)}'s container '${foreign.name}': ${runtimeName(foreign.mode)} owns them (remove the container there first)`);
    }
    if (users.length > 0) {
      throw new ConflictError(`network '${name}' has active endpoints (${users.map((c) => c.name).join(', ')}): disconnect or remove them first`);
    }
    const port = ports.tap(name);
    if (port) await host.removePort(port.id);
    ports.deleteTap(name);
    const overlay = ports.overlay(name);
    if (overlay) await host.removeVxlan(overlay.id);
    ports.deleteOverlay(name);
    host.fdb.flushNet(n.id);
    events.emit('port-down', { port: n.tap, network: n.name, kind: 'tap' });
    events.emit('network-remove', { network: n.name });
    records.state.networks = records.state.networks.filter((x) => x !== n);
    await this.d.trunks.sync();
    return n.id;
  }

  info(n: NetworkRecord): NetworkInfo {
    const { records, ports } = this.d;
    const tap = ports.tap(n.name);
    const hostIp = ipam.hostPortIp(n.subnet);
    const endpoints: EndpointInfo[] = [];
    const list: PortInfo[] = [];
    if (tap) list.push(portInfo(tap, 'host'));
    const overlay = ports.overlay(n.name);
    if (overlay) list.push(portInfo(overlay, 'overlay'));
    for (const p of ports.trunkPorts()) if (this.d.host.portTable.egressVid(p.id, n.id) >= 0) list.push(portInfo(p, 'trunk'));
    for (const c of records.state.containers) {
      for (const e of c.endpoints) {
        if (e.network !== n.name) continue;
        endpoints.push(endpointInfo(records, ports, c, e));
        const p = ports.endpoint(n.name, c.name);
        if (p) list.push(portInfo(p, 'endpoint', c.name));
      }
    }
    return {
      name: n.name, id: n.id, subnet: n.subnet, gateway: n.gateway, ipRange: n.ipRange, mtu: n.mtu,
      default: n.default, created: n.created,
      internal: n.internal ?? false, icc: n.icc ?? true, dnsOrder: n.dnsOrder ?? 'rotate', vlan: n.vlan ?? 0,
      portSecurity: n.portSecurity !== false,
      gatewayMac: ipam.macFromIp(n.gateway),
      hostPort: tap ? { name: n.tap, ip: hostIp, mac: ipam.macFromIp(hostIp) } : null,
      ports: list, endpoints,
      ...(n.vxlan ? { vxlan: vxlanInfo(this.d.host, n.vxlan, overlay) } : {}),
    };
  }

  /** VXLAN: a static FDB entry, MAC behind the VTEP `vtep` (kept in the state, never aged). */
  fdbAdd(name: string, mac: string, vtep: string, addr?: string): NetworkRecord {
    const n = this.d.records.network(name);
    const overlay = this.d.ports.overlay(name);
    if (!n.vxlan || !overlay) throw new InvalidArgumentError(`network '${name}' is not a VXLAN network: --vtep entries need one`);
    const m = normMac(mac);
    const ip = checkIpv4(vtep, 'VTEP');
    // --ip: the station's address too, for the ARP proxy (docs/VXLAN.md "ARP proxy").
    let station: string | undefined;
    if (addr !== undefined) {
      if (n.vxlan.arpProxy !== true) throw new InvalidArgumentError(`network '${name}' has no ARP proxy: --ip needs a network created with --arp-proxy`);
      station = checkIpv4(addr, 'station address');
      if (!ipam.cidrContains(n.subnet, station)) throw new InvalidArgumentError(`station address ${station} is not in the subnet ${n.subnet} of '${name}'`);
      if (parseMac(m)[0] & 1) throw new InvalidArgumentError(`MAC ${m} is a multicast or broadcast address`);
    }
    this.staticEntry(n.id, overlay.id, m, ip);
    this.d.host.vxlanArpStatic(overlay.id, m, station);
    n.vxlan.fdb = [...(n.vxlan.fdb ?? []).filter((f) => f.mac !== m), { mac: m, vtep: ip, ...(station !== undefined ? { ip: station } : {}) }];
    return n;
  }

  /** Remove a MAC from a network's FDB (a static entry also from the state). */
  fdbRemove(name: string, mac: string): NetworkRecord {
    const n = this.d.records.network(name);
    const m = normMac(mac);
    const b = parseMac(m);
    const had = this.d.host.fdb.remove(n.id, n.vlan ?? 0, (b[0] << 8) | b[1], ((b[2] << 24) | (b[3] << 16) | (b[4] << 8) | b[5]) >>> 0);
    const kept = n.vxlan?.fdb?.filter((f) => f.mac !== m);
    const inState = n.vxlan?.fdb !== undefined && kept !== undefined && kept.length !== n.vxlan.fdb.length;
    if (n.vxlan && kept) n.vxlan.fdb = kept;
    const overlay = this.d.ports.overlay(name);
    if (overlay) this.d.host.vxlanArpStatic(overlay.id, m);
    if (!had && !inState) throw new NotFoundError(`MAC ${m} is not in the FDB of '${name}'`);
    return n;
  }

  private staticEntry(net: number, port: number, mac: string, vtep: string): void {
    const b = parseMac(mac);
    this.d.host.fdb.addStatic(net, 0, (b[0] << 8) | b[1], ((b[2] << 24) | (b[3] << 16) | (b[4] << 8) | b[5]) >>> 0, port, ipValue(vtep));
  }

  /** VXLAN: add or remove a peer VTEP at run time (the record changes; not saved yet). */
  async peer(name: string, op: 'add' | 'rm', ip: string): Promise<NetworkRecord> {
    const n = this.d.records.network(name);
    if (!n.vxlan) throw new InvalidArgumentError(`network '${name}' is not a VXLAN network`);
    const addr = checkIpv4(ip, 'peer');
    const peers = n.vxlan.peers;
    if (op === 'add') {
      if (peers.includes(addr)) throw new ConflictError(`${addr} is already a peer of '${name}'`);
      if (addr === n.vxlan.localIp) throw new InvalidArgumentError(`peer ${addr} is this host's own underlay address`);
    } else if (!peers.includes(addr)) {
      throw new NotFoundError(`${addr} is not a peer of '${name}'`);
    }
    const next = op === 'add' ? [...peers, addr] : peers.filter((p) => p !== addr);
    const overlay = this.d.ports.overlay(name);
    if (overlay) await this.d.host.setVxlanPeers(overlay.id, next);
    n.vxlan.peers = next;
    return n;
  }
}

function portInfo(p: PortHandle, role: PortInfo['role'], container?: string): PortInfo {
  return { id: p.id, name: p.name, kind: p.kind, role, container, vnet: p.vnet, worker: p.worker };
}

/** A container's endpoint as the API shows it. */
export function endpointInfo(records: Records, ports: PortBook, c: ContainerRecord, e: EndpointRecord): EndpointInfo {
  const n = records.network(e.network);
  return {
    container: c.name, network: e.network, ip: e.ip, prefixLen: ipam.parseCidr(n.subnet, 32).prefixLen,
    mac: e.mac, hostIf: e.hostIf, portId: ports.endpoint(e.network, c.name)?.id ?? -1,
    aliases: e.aliases ?? [],
  };
}

/** What the router (DNS names, gateways, published ports) is told the networks now hold. */
export function routerView(records: Records, ports: PortBook): RouterView {
  const { networks, containers } = records.state;
  return {
    networks: networks.map((n) => ({
      name: n.name, id: n.id, subnet: n.subnet, gateway: n.gateway, internal: n.internal ?? false,
      icc: n.icc ?? true, dnsOrder: n.dnsOrder ?? 'rotate', hostPortId: ports.tap(n.name)?.id ?? -1,
    })),
    endpoints: containers.flatMap((c) => c.endpoints.map((e) => ({
      container: c.name, network: e.network, ip: e.ip, portId: ports.endpoint(e.network, c.name)?.id ?? -1,
      aliases: e.aliases ?? [],
    }))),
    published: [
      ...containers.filter((c) => (c.ports ?? []).length > 0 && c.endpoints.length > 0).map((c) => ({
        container: c.name, network: c.endpoints[0].network, ip: c.endpoints[0].ip, ports: c.ports ?? [],
      })),
      // An attachment publishes per endpoint (Docker: the sandbox's gateway endpoint).
      ...containers.flatMap((c) => c.endpoints.filter((e) => (e.attachment?.publish ?? []).length > 0).map((e) => ({
        container: c.name, network: e.network, ip: e.ip, ports: e.attachment?.publish ?? [],
      }))),
    ],
  };
}

/** A unicast MAC in canonical form, or a clear error. */
export function normMac(mac: string): string {
  let b: Uint8Array;
  try {
    b = parseMac(mac);
  } catch {
    throw new InvalidArgumentError(`MAC '${mac}': expected six hex bytes like 02:42:ac:11:00:02`);
  }
  if (isMulticast(b, 0)) throw new InvalidArgumentError(`MAC '${mac}' is a multicast/broadcast address: it cannot name one station`);
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}
