// The port table: which networks (VLANs) each port carries, and each network's member ports
// (the flood list). Keyed by port id (< maxPorts) and network id (< maxNets); bounded by
// those two numbers; nothing ages (ports come and go by control messages). Every worker
// holds its own copy, updated by the same messages in the same order.
//
// 802.1Q in one paragraph (docs/VLAN.md has the whole behaviour). A network is one VLAN:
// VLAN id 0 for an untagged network, 1-4094 otherwise. A port carries
// - at most one network untagged: `netOf` (an access port's network, a trunk's native VLAN;
//   NO_NET for a trunk without one), whose VLAN id is the port's PVID (`pvid`); and
// - any number of networks tagged (a trunk; the uplink with --uplink-vlan): `vidNet` maps a
//   VID to its network and `netVid` a network to its VID. Both are undefined on a port that
//   carries nothing tagged, so the untagged path reads two typed arrays and nothing else.
// A port that carries tagged VLANs also accepts frames tagged with its PVID (802.1Q), but
// sends that VLAN untagged. An access port accepts no tagged frame (priority tags aside).
//
// Port security: a container port also holds what it may send as its source (`setGuard`:
// its endpoint's MAC and IPv4 addresses, from the control plane); stages/guard.ts checks it.

import { VID_LAST } from '../wire/vlan';

export const NO_NET = -1;
export { VID_LAST };
/** Network ids are < this (dataplane/tables/neigh.ts's UPLINK_NET is 4095). */
export const DEFAULT_MAX_NETS = 4096;

/** What a port carries. */
export interface PortVlans {
  /** The network of its untagged frames, or NO_NET. */
  untagged: number;
  /** That network's VLAN id: 0 for an untagged network (tags then pass through as data). */
  pvid: number;
  /** Networks carried tagged, by VLAN id (1-4094). */
  tagged: ReadonlyArray<{ vid: number; net: number }>;
}

export interface PortEntry {
  id: number;
  name: string;
  /** The untagged network (NO_NET for a trunk without a native VLAN). */
  netId: number;
  vlans: PortVlans;
}

// ---- port security (dataplane/stages/guard.ts) ----------------------------------------
/**
 * What a container port may send as its source: its endpoint's MAC and IPv4 address(es),
 * from the control plane (control/engine/endpoints.ts). A port without one (the host TAP,
 * trunks, the uplink, a network with port security off) is not checked.
 */
export interface PortGuard {
  macHi: number;
  /** uint32 */
  macLo: number;
  /** uint32 IPv4 addresses */
  ips: readonly number[];
}
// ---- end port security ----

/** A network's members, in port id order, with the VID each sends it with (0 = untagged). */
interface Members {
  ports: Int32Array;
  /** null when every member sends the network untagged (no trunk in it: the fast path). */
  vids: Uint16Array | null;
}

export class PortTable {
  readonly maxPorts: number;
  readonly maxNets: number;
  /** The untagged network of each port; NO_NET when it has none or is absent. */
  readonly netOf: Int32Array;
  /** VLAN id of that network (0 = untagged network). */
  readonly pvid: Int32Array;
  /** Ports that carry tagged VLANs: VID -> network (NO_NET); undefined for other ports. */
  readonly vidNet: (Int32Array | undefined)[];
  /** The same ports: network -> the VID it is tagged with (0 = not carried tagged). */
  readonly netVid: (Uint16Array | undefined)[];
  /** VLAN id of each network, as its ports carry it (0 = untagged). */
  readonly vlanOfNet: Int32Array;
  /** Port security: 1 on a port whose sources are checked (guard.ts), with its MAC and addresses. */
  readonly guarded: Uint8Array;
  readonly guardMacHi: Int32Array;
  /** As int32 (compare with `lo | 0`). */
  readonly guardMacLo: Int32Array;
  /** The port's IPv4 addresses as int32; undefined on an unchecked port. */
  readonly guardIps: (Int32Array | undefined)[];
  private readonly present: Uint8Array;
  private readonly names: (string | undefined)[];
  private readonly members: (Members | undefined)[];
  private static readonly NONE = new Int32Array(0);

  constructor(maxPorts: number, maxNets = DEFAULT_MAX_NETS) {
    this.maxPorts = maxPorts;
    this.maxNets = maxNets;
    this.netOf = new Int32Array(maxPorts).fill(NO_NET);
    this.pvid = new Int32Array(maxPorts);
    this.vidNet = new Array(maxPorts);
    this.netVid = new Array(maxPorts);
    this.vlanOfNet = new Int32Array(maxNets);
    this.guarded = new Uint8Array(maxPorts);
    this.guardMacHi = new Int32Array(maxPorts);
    this.guardMacLo = new Int32Array(maxPorts);
    this.guardIps = new Array(maxPorts);
    this.present = new Uint8Array(maxPorts);
    this.names = new Array(maxPorts);
    this.members = new Array(maxNets);
  }

  /**
   * Add (or replace) a port. With a network only, it is an access port of that network,
   * untagged (`vid`: the network's VLAN id, default 0). `vlans` gives the whole membership.
   */
  add(id: number, name: string, netId: number, vlans?: PortVlans | number): void {
    if (id < 0 || id >= this.maxPorts) throw new RangeError(`port id ${id} out of range`);
    const v: PortVlans = typeof vlans === 'object' ? vlans : { untagged: netId, pvid: vlans ?? 0, tagged: [] };
    this.check(v);
    const before = this.netsOf(id);
    this.present[id] = 1;
    this.names[id] = name;
    this.apply(id, v);
    this.rebuildAll(before, this.netsOf(id));
  }

  /** Change what a port carries (a trunk whose VLANs changed). */
  setVlans(id: number, v: PortVlans): void {
    if (id < 0 || id >= this.maxPorts || this.present[id] === 0) throw new RangeError(`no port ${id}`);
    this.check(v);
    const before = this.netsOf(id);
    this.apply(id, v);
    this.rebuildAll(before, this.netsOf(id));
  }

  /** Check this port's sources (port security) against g, or (null) stop checking them. */
  setGuard(id: number, g: PortGuard | null): void {
    if (id < 0 || id >= this.maxPorts || this.present[id] === 0) throw new RangeError(`no port ${id}`);
    if (g === null) {
      this.guarded[id] = 0;
      this.guardIps[id] = undefined;
      return;
    }
    const okU32 = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
    if (!Number.isInteger(g.macHi) || g.macHi < 0 || g.macHi > 0xffff || !okU32(g.macLo)) throw new RangeError('port guard: bad MAC');
    if (!g.ips.every(okU32)) throw new RangeError('port guard: bad IPv4 address');
    this.guardMacHi[id] = g.macHi;
    this.guardMacLo[id] = g.macLo | 0;
    this.guardIps[id] = Int32Array.from(g.ips, (ip) => ip | 0);
    this.guarded[id] = 1;
  }

  /** The port's guard (a copy), or null when its sources are not checked. */
  guardOf(id: number): PortGuard | null {
    const ips = this.guardIps[id];
    if (this.guarded[id] !== 1 || ips === undefined) return null;
    return { macHi: this.guardMacHi[id], macLo: this.guardMacLo[id] >>> 0, ips: Array.from(ips, (ip) => ip >>> 0) };
  }

  remove(id: number): void {
    if (id < 0 || id >= this.maxPorts || this.present[id] === 0) return;
    this.guarded[id] = 0;
    this.guardIps[id] = undefined;
    const before = this.netsOf(id);
    this.present[id] = 0;
    this.names[id] = undefined;
    this.netOf[id] = NO_NET;
    this.pvid[id] = 0;
    this.vidNet[id] = undefined;
    this.netVid[id] = undefined;
    this.rebuildAll(before, []);
  }

  has(id: number): boolean {
    return id >= 0 && id < this.maxPorts && this.present[id] === 1;
  }

  /** Ports of a network: every port that carries it, tagged or not (do not modify the array). */
  portsOf(netId: number): Int32Array {
    return this.members[netId]?.ports ?? PortTable.NONE;
  }

  /**
   * The VID each port of portsOf(netId) sends the network with (0 = untagged), or null when
   * all of them send it untagged (do not modify the array).
   */
  tagsOf(netId: number): Uint16Array | null {
    return this.members[netId]?.vids ?? null;
  }

  /** How port `id` sends frames of network `net`: -1 not at all, 0 untagged, else the VID to tag. */
  egressVid(id: number, net: number): number {
    if (net === NO_NET) return -1;
    if (this.netOf[id] === net) return 0;
    const nv = this.netVid[id];
    if (nv === undefined || net < 0 || net >= this.maxNets) return -1;
    const vid = nv[net];
    return vid === 0 ? -1 : vid;
  }

  /** Whether the port carries tagged VLANs (a trunk, a tagged uplink). */
  isTrunk(id: number): boolean {
    return this.vidNet[id] !== undefined;
  }

  /** What the port carries (a copy). */
  vlansOf(id: number): PortVlans {
    const tagged: { vid: number; net: number }[] = [];
    const vn = this.vidNet[id];
    if (vn !== undefined) {
      for (let vid = 1; vid <= VID_LAST; vid++) {
        const net = vn[vid];
        if (net !== NO_NET && net !== this.netOf[id]) tagged.push({ vid, net });
      }
    }
    return { untagged: this.netOf[id], pvid: this.pvid[id], tagged };
  }

  name(id: number): string | undefined {
    return this.names[id];
  }

  list(): PortEntry[] {
    const out: PortEntry[] = [];
    for (let i = 0; i < this.maxPorts; i++) {
      if (this.present[i] === 1) out.push({ id: i, name: this.names[i] ?? '', netId: this.netOf[i], vlans: this.vlansOf(i) });
    }
    return out;
  }

  private check(v: PortVlans): void {
    const netOk = (n: number): boolean => Number.isInteger(n) && n >= 0 && n < this.maxNets;
    if (v.untagged !== NO_NET && !netOk(v.untagged)) throw new RangeError(`network id ${v.untagged} out of range`);
    if (!Number.isInteger(v.pvid) || v.pvid < 0 || v.pvid > VID_LAST) throw new RangeError(`VLAN id ${v.pvid} out of range`);
    const vids = new Set<number>();
    for (const t of v.tagged) {
      if (!Number.isInteger(t.vid) || t.vid < 1 || t.vid > VID_LAST) throw new RangeError(`VLAN id ${t.vid} out of range (1-${VID_LAST})`);
      if (!netOk(t.net)) throw new RangeError(`network id ${t.net} out of range`);
      if (vids.has(t.vid)) throw new RangeError(`VLAN id ${t.vid} given twice`);
      if (t.net === v.untagged) throw new RangeError(`network ${t.net} is both untagged and tagged`);
      vids.add(t.vid);
    }
    if (v.pvid !== 0 && vids.has(v.pvid)) throw new RangeError(`VLAN id ${v.pvid} is both untagged and tagged`);
  }

  private apply(id: number, v: PortVlans): void {
    this.netOf[id] = v.untagged;
    this.pvid[id] = v.untagged === NO_NET ? 0 : v.pvid;
    if (v.untagged !== NO_NET) this.vlanOfNet[v.untagged] = this.pvid[id];
    if (v.tagged.length === 0) {
      this.vidNet[id] = undefined;
      this.netVid[id] = undefined;
      return;
    }
    const vn = new Int32Array(VID_LAST + 2).fill(NO_NET);
    const nv = new Uint16Array(this.maxNets);
    for (const t of v.tagged) {
      vn[t.vid] = t.net;
      nv[t.net] = t.vid;
      this.vlanOfNet[t.net] = t.vid;
    }
    // Frames tagged with the PVID belong to the untagged network (sent untagged).
    if (v.untagged !== NO_NET && v.pvid !== 0) vn[v.pvid] = v.untagged;
    this.vidNet[id] = vn;
    this.netVid[id] = nv;
  }

  /** The networks port `id` carries now. */
  private netsOf(id: number): number[] {
    if (this.present[id] === 0) return [];
    const out: number[] = [];
    if (this.netOf[id] !== NO_NET) out.push(this.netOf[id]);
    const nv = this.netVid[id];
    if (nv !== undefined) for (let n = 0; n < nv.length; n++) if (nv[n] !== 0) out.push(n);
    return out;
  }

  private rebuildAll(a: number[], b: number[]): void {
    for (const n of new Set([...a, ...b])) this.rebuild(n);
  }

  private rebuild(netId: number): void {
    const ids: number[] = [];
    const vids: number[] = [];
    let tagged = false;
    for (let i = 0; i < this.maxPorts; i++) {
      if (this.present[i] === 0) continue;
      const vid = this.egressVid(i, netId);
      if (vid < 0) continue;
      ids.push(i);
      vids.push(vid);
      if (vid !== 0) tagged = true;
    }
    this.members[netId] = ids.length === 0 ? undefined
      : { ports: Int32Array.from(ids), vids: tagged ? Uint16Array.from(vids) : null };
  }
}
