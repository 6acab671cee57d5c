// VXLAN networks on the control side (docs/VXLAN.md): checking `network create --vxlan`
// (VNI, port, addresses, a VNI+port used by another network, an underlay address that is
// not on this host), choosing the underlay address and the default MTU (underlay MTU - 50),
// opening the overlay port, and the peer list at run time.

import type { VxlanCreate, VxlanInfo } from '../types';
import { ConflictError, InvalidArgumentError } from '../errors';
import { runJson } from '../exec';
import { VNI_MAX, VXLAN_OVERHEAD, VXLAN_PORT, ipValue } from '../../dataplane/vxlan/header';
import { MAX_PEERS } from '../../dataplane/vxlan/port';
import type { DataplaneHost, PortHandle } from '../../workers/host';
import type { NetworkRecord } from './records';
import * as ipam from '../ipam';

export type VxlanRecord = NonNullable<NetworkRecord['vxlan']>;
export type VxlanHost = Pick<DataplaneHost, 'addVxlan' | 'removeVxlan' | 'setVxlanPeers' | 'vxlanPeerCounters' | 'vxlanArpProxy' | 'vxlanArpStatic' | 'port' | 'ports'>;

interface IpAddr {
  ifname: string;
  mtu: number;
  addr_info?: { family: string; local: string; scope?: string }[];
}

/** The IPv4 addresses of this namespace with their device's MTU. */
export async function underlayAddresses(): Promise<{ ip: string; dev: string; mtu: number; global: boolean }[]> {
  const links = await runJson<IpAddr[]>('ip', ['-j', '-4', 'addr', 'show']);
  return links.flatMap((l) => (l.addr_info ?? []).filter((a) => a.family === 'inet')
    .map((a) => ({ ip: a.local, dev: l.ifname, mtu: l.mtu, global: a.scope === 'global' })));
}

/** The source address the kernel would use toward `peer` ('' when it has no route). */
async function sourceToward(peer: string): Promise<string> {
  try {
    const r = await runJson<{ prefsrc?: string }[]>('ip', ['-j', '-4', 'route', 'get', peer]);
    return r[0]?.prefsrc ?? '';
  } catch {
    return '';
  }
}

export function checkIpv4(text: string, what: string): string {
  if (typeof text !== 'string' || Number.isNaN(ipValue(text))) throw new InvalidArgumentError(`${what} '${text}': expected an IPv4 address like 192.0.2.10`);
  const v = ipValue(text) >>> 0;
  if (v === 0 || v >>> 24 === 127 || v >>> 28 === 14 || v === 0xffffffff) {
    throw new InvalidArgumentError(`${what} '${text}': not a unicast address`);
  }
  return text.split('.').map(Number).join('.');
}

/**
 * The checked VXLAN settings of a new network, with the MTU its containers get (the one
 * asked for, or the underlay device's MTU - 50).
 */
export async function checkVxlan(spec: VxlanCreate, mtu: number | undefined, vlan: number | undefined, others: NetworkRecord[]):
  Promise<{ rec: VxlanRecord; mtu: number }> {
  const vni = spec.vni;
  if (!Number.isInteger(vni) || vni < 1 || vni > VNI_MAX) throw new InvalidArgumentError(`VXLAN VNI '${String(vni)}': expected an integer 1..${VNI_MAX}`);
  const port = spec.port ?? VXLAN_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidArgumentError(`VXLAN port '${String(port)}': expected 1..65535`);
  if (vlan !== undefined && vlan !== 0) throw new InvalidArgumentError('a VXLAN network cannot also be an 802.1Q VLAN (--vlan): the VNI is its segment id');
  const peers = [...new Set((spec.peers ?? []).map((p) => checkIpv4(p, 'peer')))];
  if (peers.length > MAX_PEERS - 1) throw new InvalidArgumentError(`at most ${MAX_PEERS - 1} peers`);
  const other = others.find((n) => n.vxlan && n.vxlan.vni === vni && n.vxlan.port === port);
  if (other) throw new ConflictError(`VXLAN VNI ${vni} on UDP port ${port} is already network '${other.name}'`);
  const addrs = await underlayAddresses();
  let localIp: string;
  if (spec.underlayIp !== undefined) {
    localIp = checkIpv4(spec.underlayIp, 'underlay address');
  } else {
    localIp = peers.length > 0 ? await sourceToward(peers[0]) : '';
    if (localIp === '') localIp = addrs.find((a) => a.global)?.ip ?? '';
    if (localIp === '') throw new InvalidArgumentError('no IPv4 address on this host to send VXLAN from: give --underlay-ip');
  }
  const local = addrs.find((a) => a.ip === localIp);
  if (!local) throw new InvalidArgumentError(`underlay address ${localIp} is not an address of this host (ip -4 addr shows ${addrs.map((a) => a.ip).join(', ') || 'none'})`);
  if (peers.includes(localIp)) throw new InvalidArgumentError(`peer ${localIp} is this host's own underlay address`);
  const inner = mtu ?? local.mtu - VXLAN_OVERHEAD;
  if (inner < 68) throw new InvalidArgumentError(`MTU ${inner} is too small (the underlay ${local.dev} has MTU ${local.mtu}; VXLAN takes 50 bytes)`);
  if (spec.arpProxy !== undefined && typeof spec.arpProxy !== 'boolean') throw new InvalidArgumentError('VXLAN arpProxy: expected true or false');
  return { rec: { vni, port, localIp, peers, ...(spec.arpProxy === true ? { arpProxy: true } : {}) }, mtu: inner };
}

/** Open the network's overlay port; the errors a user can act on are said plainly. */
export async function openOverlay(host: VxlanHost, n: NetworkRecord): Promise<PortHandle> {
  const vx = n.vxlan as VxlanRecord;
  try {
    return await host.addVxlan({
      name: `vxlan${n.id}`, netId: n.id, vni: vx.vni, localIp: vx.localIp, port: vx.port, mtu: n.mtu, peers: vx.peers,
      localMacs: [ipam.macFromIp(ipam.hostPortIp(n.subnet)), ipam.macFromIp(n.gateway)], arpProxy: vx.arpProxy === true,
    });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'EADDRNOTAVAIL') throw new InvalidArgumentError(`underlay address ${vx.localIp} is not an address of this host`);
    if (code === 'EADDRINUSE') throw new ConflictError(`UDP port ${vx.port} on ${vx.localIp} is already in use (a kernel vxlan device or another program?)`);
    throw e;
  }
}

export function vxlanInfo(host: VxlanHost, vx: VxlanRecord, overlay: PortHandle | undefined): VxlanInfo {
  const vtep = host.ports().find((p) => p.kind === 'vtep' && p.name === `vtep-${vx.port}`);
  const info: VxlanInfo = {
    vni: vx.vni, port: vx.port, localIp: vx.localIp, peers: [...vx.peers],
    overlayPort: overlay?.name ?? '', vtepPort: vtep?.name ?? '',
    counters: overlay ? host.vxlanPeerCounters(overlay.id) : [],
    arpProxy: vx.arpProxy === true,
  };
  const arp = vx.arpProxy === true && overlay ? host.vxlanArpProxy(overlay.id) : undefined;
  if (arp !== undefined) info.arp = arp;
  return info;
}
