// A container's endpoint on a network: a veth pair whose inner end is configured in the
// container (address, MAC, routes) and whose host end is a switch port. Also the
// container's /etc/netns files, which follow its endpoints. Attachments (attachments.ts)
// make their veths themselves and share open() and unplug().

import type { EventBus } from '../events';
import { writeContainerEtc } from '../etc';
import * as ipam from '../ipam';
import * as netns from '../netns';
import type { DataplaneHost } from '../../workers/host';
import type { PortGuard } from '../../dataplane/tables/ports';
import { parseIp } from '../../dataplane/wire/ip';
import { macHi, macLo, parseMac } from '../../dataplane/wire/mac';
import type { ContainerRecord, EndpointRecord, NetworkRecord, Records } from './records';
import type { PortBook } from './ports';

export interface EndpointDeps {
  records: Records;
  ports: PortBook;
  host: Pick<DataplaneHost, 'addPort' | 'removePort'>;
  events: Pick<EventBus, 'emit'>;
}

export class Endpoints {
  constructor(private readonly d: EndpointDeps) {}

  /** Create the veth pair, configure the inner end, and plug the host end into the switch. */
  async attach(c: ContainerRecord, n: NetworkRecord, ip: string | undefined, first: boolean): Promise<EndpointRecord> {
    const used = new Map<string, string>();
    for (const o of this.d.records.state.containers) for (const e of o.endpoints) if (e.network === n.name) used.set(e.ip, o.name);
    const addr = ipam.allocateIp(n, used, ip);
    const e: EndpointRecord = {
      network: n.name, ip: addr, mac: ipam.macFromIp(addr),
      hostIf: netns.hostIfName(`${c.id}/${n.id}`), innerIf: await netns.nextInnerIfName(c.netns),
    };
    await netns.createVeth(e.hostIf, c.netns, n.mtu, e.innerIf);
    try {
      await this.plug(c, n, e, first);
    } catch (err) {
      await netns.deleteLink(e.hostIf).catch(() => undefined);
      throw err;
    }
    return e;
  }

  /** Configure the inner end (the first endpoint holds the default route) and open the port. */
  async plug(c: ContainerRecord, n: NetworkRecord, e: EndpointRecord, defaultRoute: boolean): Promise<void> {
    await netns.configureEndpoint(c.netns, e.innerIf, {
      mac: e.mac, ip: e.ip, prefixLen: ipam.parseCidr(n.subnet, 32).prefixLen, gateway: n.gateway, mtu: n.mtu, defaultRoute,
    });
    await this.open(c, n, e);
  }

  /** Open the veth's host end as the endpoint's switch port (port security on), and say so. */
  async open(c: ContainerRecord, n: NetworkRecord, e: EndpointRecord): Promise<void> {
    const guard = portGuard(n, e);
    const port = await this.d.host.addPort({ name: e.hostIf, kind: 'afpacket', netId: n.id, vlan: n.vlan ?? 0, ...(guard ? { guard } : {}) });
    this.d.ports.setEndpoint(n.name, c.name, port);
    this.d.events.emit('port-up', { port: e.hostIf, network: n.name, container: c.name, kind: 'afpacket', ip: e.ip, mac: e.mac });
  }

  async unplug(c: ContainerRecord, e: EndpointRecord): Promise<void> {
    const port = this.d.ports.endpoint(e.network, c.name);
    if (port) await this.d.host.removePort(port.id);
    this.d.ports.deleteEndpoint(e.network, c.name);
    await netns.deleteLink(e.hostIf);
    this.d.events.emit('port-down', { port: e.hostIf, network: e.network, container: c.name, kind: 'afpacket' });
  }

  /** The container's /etc/resolv.conf (its first network's gateway) and /etc/hosts. */
  writeEtc(c: ContainerRecord): void {
    if (c.mode !== 'bridge' && c.mode !== 'none') return;
    const { networks, containers } = this.d.records.state;
    const first = c.endpoints[0];
    const gw = first ? networks.find((n) => n.name === first.network)?.gateway : undefined;
    const links = (c.links ?? []).flatMap((l) => {
      const other = containers.find((x) => x.name === l.name);
      const shared = other?.endpoints.find((e) => c.endpoints.some((m) => m.network === e.network));
      return shared ? [{ ip: shared.ip, name: l.name, alias: l.alias }] : [];
    });
    writeContainerEtc(c.netns, { nameserver: gw, self: first ? { name: c.name, ip: first.ip } : undefined, links });
  }
}

/**
 * Port security for an endpoint's port (dataplane/stages/guard.ts): the sources it may use,
 * its MAC and address; undefined on a network with port security off.
 */
export function portGuard(n: NetworkRecord, e: Pick<EndpointRecord, 'mac' | 'ip'>): PortGuard | undefined {
  if (n.portSecurity === false) return undefined;
  const mac = parseMac(e.mac);
  return { macHi: macHi(mac, 0), macLo: macLo(mac, 0), ips: [parseIp(e.ip)] };
}
