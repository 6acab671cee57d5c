// 802.1Q trunks (docs/VLAN.md): an interface of the daemon's namespace, or a TAP vsw makes,
// that carries VLAN networks as tagged frames. What a trunk carries follows the networks:
// a VLAN network created later joins every trunk whose set includes it.

import type { TrunkCreate, TrunkInfo } from '../types';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../errors';
import type { EventBus } from '../events';
import * as netns from '../netns';
import { checkVid, formatVlanSet, inVlanSet, parseVlanSet } from '../vlan';
import type { DataplaneHost } from '../../workers/host';
import { NO_NET, type PortVlans } from '../../dataplane/tables/ports';
import type { Records, Saver, TrunkRecord } from './records';
import type { PortBook } from './ports';

export interface TrunkDeps {
  records: Records;
  ports: PortBook;
  host: Pick<DataplaneHost, 'addPort' | 'removePort' | 'ports' | 'setPortVlans'>;
  events: Pick<EventBus, 'emit'>;
  store: Saver;
}

export class Trunks {
  constructor(private readonly d: TrunkDeps) {}

  list(): TrunkInfo[] {
    return this.d.records.trunks().map((t) => this.info(t));
  }

  async add(spec: TrunkCreate): Promise<TrunkInfo> {
    const dev = spec.device;
    if (typeof dev !== 'string' || dev === '' || dev === '.' || dev === '..' || Buffer.byteLength(dev) > 15 || /[/:\s]/.test(dev)) {
      throw new InvalidArgumentError(`invalid interface name '${String(dev)}': 1 to 15 characters, without '/', ':' or spaces`);
    }
    if (this.d.records.trunks().some((t) => t.device === dev)) throw new ConflictError(`${dev} is already a trunk`);
    if (this.d.host.ports().some((p) => p.name === dev)) {
      throw new ConflictError(`${dev} is already a port of the switch (a network's TAP, a container's veth or the uplink)`);
    }
    const native = spec.native === undefined ? undefined : checkVid(spec.native, 'native VLAN');
    const vlans = spec.vlans === undefined ? undefined : parseVlanSet(spec.vlans);
    const kind: TrunkRecord['kind'] = spec.tap ? 'tap' : 'afpacket';
    const exists = await netns.linkExists(dev);
    if (kind === 'afpacket' && !exists) {
      throw new NotFoundError(`no interface '${dev}' in the daemon's namespace (with --tap, vsw creates a TAP by that name)`);
    }
    if (kind === 'tap' && exists) throw new ConflictError(`an interface '${dev}' already exists: without --tap, vsw attaches it as it is`);
    const t: TrunkRecord = { device: dev, kind, created: new Date().toISOString() };
    if (vlans !== undefined) t.vlans = vlans;
    if (native !== undefined) t.native = native;
    await this.open(t);
    (this.d.records.state.trunks ??= []).push(t);
    this.d.store.save();
    return this.info(t);
  }

  async remove(device: string): Promise<void> {
    const { records, ports } = this.d;
    const t = records.trunks().find((x) => x.device === device);
    if (!t) throw new NotFoundError(`no trunk '${device}' (see vsw trunk ls)`);
    const port = ports.trunk(device);
    if (port) {
      await this.d.host.removePort(port.id);
      ports.deleteTrunk(device);
      this.d.events.emit('port-down', { port: device, network: 'trunk', kind: t.kind });
    }
    records.state.trunks = records.trunks().filter((x) => x !== t);
    this.d.store.save();
  }

  /**
   * What a trunk carries now: the network of its native VLAN untagged, the other VLAN
   * networks in its set tagged (a network created later joins at once).
   */
  private vlansOf(t: TrunkRecord): PortVlans {
    const networks = this.d.records.state.networks;
    const native = t.native === undefined ? undefined : networks.find((n) => n.vlan === t.native);
    const tagged = networks
      .filter((n) => n.vlan !== undefined && n.vlan > 0 && n.vlan !== t.native && (t.vlans === undefined || inVlanSet(t.vlans, n.vlan)))
      .map((n) => ({ vid: n.vlan as number, net: n.id }))
      .sort((a, b) => a.vid - b.vid);
    return native ? { untagged: native.id, pvid: native.vlan as number, tagged } : { untagged: NO_NET, pvid: 0, tagged };
  }

  private info(t: TrunkRecord): TrunkInfo {
    const port = this.d.ports.trunk(t.device);
    const v = this.vlansOf(t);
    const name = (id: number): string => this.d.records.state.networks.find((n) => n.id === id)?.name ?? `#${id}`;
    const networks = [
      ...(v.untagged === NO_NET ? [] : [{ name: name(v.untagged), vlan: v.pvid, tagged: false }]),
      ...v.tagged.map((x) => ({ name: name(x.net), vlan: x.vid, tagged: true })),
    ].sort((a, b) => a.vlan - b.vlan);
    return {
      device: t.device, kind: t.kind, vlans: t.vlans ? formatVlanSet(t.vlans) : 'all', native: t.native ?? null,
      portId: port?.id ?? -1, status: port ? 'up' : 'missing', networks, created: t.created,
    };
  }

  /** Open a trunk's port (an AF_PACKET socket on the interface, or a new TAP) and bring it up. */
  private async open(t: TrunkRecord): Promise<void> {
    const port = await this.d.host.addPort({ name: t.device, kind: t.kind, netId: NO_NET, vlans: this.vlansOf(t) });
    try {
      // A TAP of ours: no IPv6 chatter (router solicitations) from the host into the trunk.
      if (t.kind === 'tap') await netns.disableIpv6(t.device);
      await netns.linkUp(t.device);
    } catch (e) {
      await this.d.host.removePort(port.id);
      throw e;
    }
    this.d.ports.setTrunk(t.device, port);
    this.d.events.emit('port-up', {
      port: t.device, network: 'trunk', kind: t.kind, vlans: t.vlans ? formatVlanSet(t.vlans) : 'all', native: t.native,
    });
  }

  /** At start: re-open every trunk of the state; one that cannot be is kept, as missing. */
  async attachAll(log: (line: string) => void): Promise<void> {
    for (const t of this.d.records.trunks()) await this.attach(t, log);
  }

  private async attach(t: TrunkRecord, log: (line: string) => void): Promise<void> {
    const exists = await netns.linkExists(t.device);
    if (t.kind === 'afpacket' && !exists) {
      log(`trunk ${t.device}: no such interface; kept, not attached (vsw trunk rm ${t.device} forgets it)`);
      return;
    }
    if (t.kind === 'tap' && exists) {
      log(`trunk ${t.device}: an interface by that name already exists; the TAP is not created`);
      return;
    }
    try {
      await this.open(t);
      log(`trunk ${t.device}: attached (${this.info(t).networks.map((n) => `${n.vlan}${n.tagged ? '' : ' untagged'}`).join(', ') || 'no VLAN network yet'})`);
    } catch (e) {
      log(`trunk ${t.device}: ${(e as Error).message}; kept, not attached`);
    }
  }

  /** Trunks follow the networks: after a VLAN network is created or removed. */
  async sync(): Promise<void> {
    for (const t of this.d.records.trunks()) {
      const port = this.d.ports.trunk(t.device);
      if (!port) continue;
      const v = this.vlansOf(t);
      if (JSON.stringify(v) !== JSON.stringify(port.vlans)) await this.d.host.setPortVlans(port.id, v);
    }
  }
}
