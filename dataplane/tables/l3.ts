// The router's configuration as the dataplane sees it: each network's gateway, the uplink,
// and the published ports. Small and rarely changed: the main thread sends every worker a
// full snapshot (an `l3` message) whenever it changes, and each worker rebuilds this table
// from it. Everything is numbers (IPs as uint32, MACs as hi/lo like the FDB), so the hot
// path compares integers.

import type { DnsSnapshot } from '../l3/dns';

/** One network's gateway, as the workers need it. */
export interface L3NetSpec {
  id: number;
  gwIp: number;
  gwMacHi: number;
  gwMacLo: number;
  /** Subnet address and mask (uint32). */
  subnet: number;
  mask: number;
  internal: boolean;
  icc: boolean;
  /** The network's host TAP port id (-1 when absent) and its address (DNS over TCP goes there). */
  hostPort: number;
  hostIp: number;
  hostMacHi: number;
  hostMacLo: number;
}

export interface L3UplinkSpec {
  port: number;
  ip: number;
  subnet: number;
  mask: number;
  macHi: number;
  macLo: number;
  gateway: number;
}

/** A published port: (proto, hostIp or 0 = every switch address, hostPort) -> (net, ip, port). */
export interface L3MappingSpec {
  id: number;
  proto: number;   // 6 TCP, 17 UDP
  hostIp: number;
  hostPort: number;
  net: number;
  ip: number;
  port: number;
}

export interface L3Snapshot {
  nets: L3NetSpec[];
  uplink: L3UplinkSpec | null;
  mappings: L3MappingSpec[];
  /** Names for the workers' DNS answers (dataplane/l3/dns.ts). */
  dns?: DnsSnapshot;
}

export const EMPTY_L3: L3Snapshot = { nets: [], uplink: null, mappings: [] };

export class L3Table {
  /** By network id; undefined for networks without a router (none today) or unknown ids. */
  readonly byNet: (L3NetSpec | undefined)[] = [];
  nets: L3NetSpec[] = [];
  uplink: L3UplinkSpec | null = null;
  private mappings = new Map<number, L3MappingSpec[]>();

  constructor(snap: L3Snapshot = EMPTY_L3) {
    this.load(snap);
  }

  load(snap: L3Snapshot): void {
    this.byNet.length = 0;
    for (const n of snap.nets) this.byNet[n.id] = n;
    this.nets = snap.nets.slice();
    this.uplink = snap.uplink;
    this.mappings = new Map();
    for (const m of snap.mappings) {
      const key = mappingKey(m.proto, m.hostPort);
      const list = this.mappings.get(key);
      if (list) list.push(m); else this.mappings.set(key, [m]);
    }
  }

  /** The network whose subnet holds ip, or undefined. */
  netOfIp(ip: number): L3NetSpec | undefined {
    const nets = this.nets;
    for (let i = 0; i < nets.length; i++) {
      const n = nets[i];
      if (((ip & n.mask) >>> 0) === n.subnet) return n;
    }
    return undefined;
  }

  /** Is ip one of the switch's own addresses (a gateway or the uplink)? */
  isSwitchIp(ip: number): boolean {
    if (this.uplink !== null && this.uplink.ip === ip) return true;
    const nets = this.nets;
    for (let i = 0; i < nets.length; i++) if (nets[i].gwIp === ip) return true;
    return false;
  }

  /** The published port for a packet to switch address dstIp:dport, or undefined. */
  mapping(proto: number, dstIp: number, dport: number): L3MappingSpec | undefined {
    const list = this.mappings.get(mappingKey(proto, dport));
    if (list === undefined) return undefined;
    for (let i = 0; i < list.length; i++) {
      const m = list[i];
      if (m.hostIp === 0 || m.hostIp === dstIp) return m;
    }
    return undefined;
  }

  inUplinkSubnet(ip: number): boolean {
    const u = this.uplink;
    return u !== null && ((ip & u.mask) >>> 0) === u.subnet;
  }
}

function mappingKey(proto: number, port: number): number {
  return proto * 65536 + port;
}
