// egress: the one place where a verdict becomes frames on ports. Everything that sends goes
// through here: the pipeline's verdicts (deliver(), from the worker loop), the frames the
// router makes (emit(), behind the stages' Emitter), and the frames the main thread sends
// (sendNow(), from workers/host.ts sendFrame: DNS answers, ARP probes).
//
// A frame leaves in its port's form, built in two steps, both here and nowhere else:
// 1. 802.1Q, from the port table (PortTable.egressVid): the pipeline hands frames over
//    untagged (ingress removed any tag). A port that carries the frame's network tagged (a
//    trunk, a tagged uplink) gets the tag of that VLAN with the PCP/DEI the frame arrived with
//    (prio); every other port gets it untagged. A port that does not carry the network gets
//    nothing (port-down for a verdict).
// 2. The port's device encapsulation, its `form` (put(), one switch):
//    - FORM_VNET: a 10-byte virtio-net header, then the Ethernet frame (TAP with
//      IFF_VNET_HDR, AF_PACKET with PACKET_VNET_HDR: every port vsw opens today).
//    - FORM_ETHERNET: the Ethernet frame only.
//    The virtio-net header rule: a frame carries the header it arrived with (its offloads:
//    partial checksum, GSO), or an all-zero one when it has none (frames made here, frames
//    from a port without headers: a scratch copy); a FORM_ETHERNET port gets it stripped (an
//    offset, no copy). Offloads cannot survive a port without headers, which is why the host
//    opens only ports that have them; the rule here keeps any mix of ports byte-correct.
//    A new port kind (a VXLAN segment, say) is a new FORM_ constant and one case in put():
//    write its outer headers in front of the frame, in the headroom or in a scratch copy as
//    withZeroHeader() does, and give formHeaderLen() the bytes its counters leave out.
//    - FORM_VXLAN (dataplane/vxlan/, docs/VXLAN.md): UDP + VXLAN headers, then the Ethernet
//      frame, as datagrams to one VTEP each. Always a scratch copy (the headers go in front,
//      and a partial checksum is finished in the copy so the original stays right for the
//      other ports of a flood); a GSO frame is cut into segments of the overlay MTU there
//      (dataplane/vxlan/segment.ts). The destination: the VTEP the FDB holds for the
//      destination MAC (lookupVtep), else every peer (broadcast, multicast, unknown unicast:
//      head-end replication) -- the same bytes queued once per peer. A frame from the overlay
//      never goes back to it: the overlay is one port, and a flood skips the ingress port.
//
// Zero copy where possible: a frame for one port, or for ports that all want the same form,
// is tagged in place (pushTag uses the 4 bytes of headroom every frame has in the buffer;
// stripping a header is an offset). Only a flood that needs a tagged and an untagged form (or
// several VIDs) copies: the tagged form is written into a scratch area of the same buffer,
// reset every batch; when it is full, the pending queues are sent first (flush) and it starts
// over, so queued offsets never point at reused bytes.
//
// Queues: each attached port has a transmit queue of (offset, length) pairs into the buffer.
// flush() hands every non-empty queue to the device once (TxDevice.transmit: sendmmsg on
// AF_PACKET, write per frame on TAP) and counts what left and what did not. Drops are named
// here, on the port the frame came in on: port-down (unicast to a port that is gone or does
// not carry the network), no-egress (a flood with no receiver), the pipeline's own reason
// (OUT_DROP); and on the egress port: tx-refused (the device took fewer), tx-error (it threw).
// A made frame (router, host) that cannot go is not counted: there is no ingress port to
// blame, and the router counts its own outcomes.
//
// Link impairment (dataplane/impair/, `vsw impair ... --direction out`): a port with an
// Impairment (EgressPort.impair) takes its frames, in the port's form, into its delay queue
// instead of its transmit queue (enqueue(): one field check per frame for every other port);
// the worker loop later calls release(q, now), which copies the frames that are due into
// scratch and queues them for real. `now` (ms) is set by the loop before each batch.
//
// Per frame this costs a verdict switch, one egress-VID lookup per unicast, and one form
// switch per receiving port; nothing allocates and every call site sees one port shape.

import { DROP } from './drops';
import { OUT_DROP, OUT_FLOOD, type Packet } from './packet';
import type { PortTable } from './tables/ports';
import { ETH_HDR_LEN, ETHERTYPE_VLAN } from './wire/ethernet';
import { pushTag, VLAN_TAG_LEN } from './wire/vlan';
import { VNET_HDR_LEN, writeEmptyVnetHdr, VNET_F_NEEDS_CSUM, VNET_GSO_ECN, VNET_GSO_TCPV4 } from './wire/vnet';
import { macHi, macLo } from './wire/mac';
import { flowSourcePort, VXLAN_HDR_LEN, VXLAN_OUTER_LEN, writeOuter, writeVxlanHeader } from './vxlan/header';
import { UDP_HDR_LEN } from './wire/udp';
import { writeU16 } from './wire/bytes';
import { finishChecksum, planTcp4, SegPlan, segmentLength, writeSegment } from './vxlan/segment';
import type { VxlanPort } from './vxlan/port';
import type { Impairment, ImpairNote } from './impair/impair';

/** A port's device takes a virtio-net header, then the Ethernet frame. */
export const FORM_VNET = 0;
/** A port's device takes the Ethernet frame only. */
export const FORM_ETHERNET = 1;
/** A VXLAN overlay segment: UDP + VXLAN headers, then the Ethernet frame, to a VTEP (EgressPort.vx). */
export const FORM_VXLAN = 2;

/** Bytes in front of the Ethernet header in a port's frames (not counted as tx bytes). */
export function formHeaderLen(form: number): number {
  return form === FORM_VNET ? VNET_HDR_LEN : form === FORM_VXLAN ? VXLAN_OUTER_LEN : 0;
}

/** Where FORM_VXLAN finds the VTEP of a destination MAC (the FDB). */
export interface VtepLookup {
  lookupVtep(net: number, vlan: number, macHi: number, macLo: number): number;
}

/** A port as egress sees it: its form and its transmit queue. */
export interface EgressPort {
  readonly id: number;
  /** FORM_VNET or FORM_ETHERNET. */
  readonly form: number;
  /** Pending frames: buf[txOffs[j], txOffs[j] + txLens[j]) for j < txN. */
  readonly txOffs: Int32Array;
  readonly txLens: Int32Array;
  txN: number;
  /** FORM_VXLAN: the segment (VNI, peers, per-datagram destinations). */
  readonly vx?: VxlanPort;
  /** Link impairment of what leaves by this port (vsw impair --direction out); absent = none. */
  impair?: Impairment;
}

/** Where queued frames leave: the worker loop (io.send, tx capture), the main thread (io.send). */
export interface TxDevice<P extends EgressPort> {
  /** Send q's queued frames; returns how many the device took. May throw (counted as tx-error). */
  transmit(q: P): number;
}

/** Where egress counts: per-port rows of a stats array (laid out by workers/shared.ts). */
export interface EgressCounters {
  readonly stats: Float64Array;
  /** Words per port row, and where tx packets, tx bytes and drop reason 0 sit in a row. */
  readonly row: number;
  readonly txPackets: number;
  readonly txBytes: number;
  readonly drop0: number;
}

export interface EgressOptions<P extends EgressPort> {
  /** The buffer every queued offset points into. */
  buf: Uint8Array;
  ports: PortTable;
  device: TxDevice<P>;
  /** null: count nothing (the main thread has no stats row of its own). */
  counters: EgressCounters | null;
  /** Room for frames made during a batch (the router's): `slots` of `slotBytes` from `off`. */
  made?: { off: number; slots: number; slotBytes: number };
  /** Room for the second forms of flooded frames (tagged copies), reset every batch. */
  scratch?: { off: number; bytes: number };
  /** FORM_VXLAN ports: the FDB, for the VTEP of a destination MAC. */
  vteps?: VtepLookup;
}

const PORT_DOWN = DROP['port-down'];
const NO_EGRESS = DROP['no-egress'];
const TX_REFUSED = DROP['tx-refused'];
const TX_ERROR = DROP['tx-error'];
const VX_HOST_MAC = DROP['vxlan-host-mac'];
const VX_NO_GSO = DROP['vxlan-no-gso'];
/** Segments per UDP GSO send (the kernel's UDP_MAX_SEGMENTS is 64 before Linux 6.9, 128 after). */
const VX_GSO_MAX = 64;
/** Bytes per UDP GSO send at most: the largest UDP payload over IPv4 (65535 - 20 - 8); more is EMSGSIZE. */
const VX_GSO_BYTES = 65507;

export class Egress<P extends EgressPort = EgressPort> {
  readonly buf: Uint8Array;
  private readonly ports: PortTable;
  private readonly device: TxDevice<P>;
  private readonly byId: (P | undefined)[];
  private readonly dirty: P[] = [];
  private readonly stats: Float64Array | null;
  private readonly row: number;
  private readonly txPackets: number;
  private readonly txBytes: number;
  private readonly drop0: number;
  private readonly madeOff: number;
  private readonly madeSlots: number;
  private readonly madeSlot: number;
  private madeN = 0;
  private readonly scratchOff: number;
  private readonly scratchBytes: number;
  private used = 0;
  /** Frames copied to the scratch area (a second form of a flooded frame, a header added). */
  copies = 0;
  /** Early flushes because the scratch area was full. */
  flushes = 0;
  private readonly vteps: VtepLookup | null;
  private readonly plan = new SegPlan();
  /** The time impairment sees for the frames of this batch, ms (set by the caller). */
  now = 0;
  /** When set (a live trace is on), what impairment did to each frame delivered, by port. */
  notes: ImpairNote[] | null = null;
  private releasing: P | null = null;
  /** Queue a released frame: into scratch (its pool is not our buffer), then the transmit queue. */
  private readonly releaseSink = (pool: Uint8Array, off: number, len: number): void => {
    const q = this.releasing;
    if (q === null) return;
    const at = this.scratch(len);
    if (at < 0) return;
    this.buf.set(pool.subarray(off, off + len), at);
    this.send(q, at, len);
  };

  constructor(o: EgressOptions<P>) {
    const made = o.made ?? { off: 0, slots: 0, slotBytes: 0 };
    const scratch = o.scratch ?? { off: 0, bytes: 0 };
    if (made.off < 0 || made.off + made.slots * made.slotBytes > o.buf.length) throw new RangeError('egress: made-frame area outside the buffer');
    if (scratch.off < 0 || scratch.off + scratch.bytes > o.buf.length) throw new RangeError('egress: scratch area outside the buffer');
    this.buf = o.buf;
    this.ports = o.ports;
    this.device = o.device;
    this.byId = new Array(o.ports.maxPorts);
    const c = o.counters;
    this.stats = c === null ? null : c.stats;
    this.row = c === null ? 0 : c.row;
    this.txPackets = c === null ? 0 : c.txPackets;
    this.txBytes = c === null ? 0 : c.txBytes;
    this.drop0 = c === null ? 0 : c.drop0;
    this.madeOff = made.off;
    this.madeSlots = made.slots;
    this.madeSlot = made.slotBytes;
    this.scratchOff = scratch.off;
    this.scratchBytes = scratch.bytes;
    this.vteps = o.vteps ?? null;
  }

  /** Start sending to a port (its queue must be empty). */
  attach(q: P): void {
    this.byId[q.id] = q;
  }

  /** Stop sending to a port: later frames for it are port-down. */
  detach(id: number): void {
    this.byId[id] = undefined;
  }

  port(id: number): P | undefined {
    return this.byId[id];
  }

  /** Every attached port, in id order (control path: allocates). */
  attached(): P[] {
    return this.byId.filter((q): q is P => q !== undefined);
  }

  /** A new batch: the made-frame slots and the scratch area are free (everything queued was sent). */
  reset(): void {
    this.madeN = 0;
    this.used = 0;
  }

  /** Send a frame the pipeline decided, or count why not on its ingress port. OUT_LOCAL: nothing. */
  deliver(p: Packet): void {
    const out = p.out;
    if (out >= 0) {
      if (!this.unicast(out, p.netId, p.prio, p.off, p.len, p.vnet)) this.drop(p.inPort, PORT_DOWN);
    } else if (out === OUT_FLOOD) {
      if (this.flood(p.netId, p.inPort, p.prio, p.off, p.len, p.vnet) === 0) this.drop(p.inPort, NO_EGRESS);
    } else if (out === OUT_DROP) {
      this.drop(p.inPort, p.drop);
    }
  }

  /**
   * Room for one made frame: the offset where its Ethernet header goes (with room before it
   * for a virtio-net header and a VLAN tag), or -1 when none is left this batch.
   */
  alloc(): number {
    if (this.madeN >= this.madeSlots) return -1;
    return this.madeOff + (this.madeN++) * this.madeSlot + VLAN_TAG_LEN + VNET_HDR_LEN;
  }

  /**
   * Send a made frame, buf[off, off+len) with room before it (alloc()), to `port` in network
   * `net`, or to every port of `net` when port < 0. It has no offloads: an all-zero header.
   */
  emit(off: number, len: number, port: number, net: number): void {
    const at = off - VNET_HDR_LEN;
    writeEmptyVnetHdr(this.buf, at);
    if (port >= 0) this.unicast(port, net, 0, at, len + VNET_HDR_LEN, true);
    else this.flood(net, -1, 0, at, len + VNET_HDR_LEN, true);
  }

  /**
   * Send a copy of one Ethernet frame to `port` in network `net` at once, behind an all-zero
   * virtio-net header (a thread that sends frames one at a time: nothing may be queued).
   * true when the device took it; false when the port is gone, does not carry `net`, the
   * frame is shorter than an Ethernet header or longer than a made-frame slot, or the
   * device refused it.
   */
  sendNow(frame: Uint8Array, port: number, net: number): boolean {
    this.reset();
    const off = this.alloc();
    if (off < 0 || port < 0 || frame.length < ETH_HDR_LEN || frame.length > this.madeSlot - VLAN_TAG_LEN - VNET_HDR_LEN) return false;
    this.buf.set(frame, off);
    writeEmptyVnetHdr(this.buf, off - VNET_HDR_LEN);
    if (!this.unicast(port, net, 0, off - VNET_HDR_LEN, frame.length + VNET_HDR_LEN, true)) return false;
    return this.flush() === 1;
  }

  /**
   * Queue buf[off, off+len) (a virtio-net header first when `vnet`) for `port` as it sends
   * network `net`: tagged in place when it carries `net` tagged. false (nothing queued) when
   * the port is gone or does not carry `net`.
   */
  unicast(port: number, net: number, prio: number, off: number, len: number, vnet: boolean): boolean {
    const q = this.byId[port];
    if (q === undefined) return false;
    const vid = this.ports.egressVid(port, net);
    if (vid < 0) return false;
    if (vid === 0) return this.put(q, off, len, vnet);
    const o = pushTag(this.buf, off, len, ETHERTYPE_VLAN, prio | vid, vnet);
    return o >= 0 && this.put(q, o, len + VLAN_TAG_LEN, vnet);
  }

  /** Queue the frame for every port of `net` but `except`, each in its form. Returns how many. */
  flood(net: number, except: number, prio: number, off: number, len: number, vnet: boolean): number {
    const members = this.ports.portsOf(net);
    const vids = this.ports.tagsOf(net);
    // The VID every receiver takes, when they all take the same one: tagged in place. 0 when
    // none is tagged (the untagged network's fast path) or when forms differ.
    const inPlace = vids === null ? 0 : commonVid(members, vids, except);
    let o = off;
    let l = len;
    if (inPlace > 0) {
      o = pushTag(this.buf, off, len, ETHERTYPE_VLAN, prio | inPlace, vnet);
      if (o < 0) return 0;
      l = len + VLAN_TAG_LEN;
    }
    let copyVid = -1;
    let copyOff = -1;
    let n = 0;
    for (let j = 0; j < members.length; j++) {
      const m = members[j];
      if (m === except) continue;
      const q = this.byId[m];
      if (q === undefined) continue;
      const v = vids === null ? 0 : vids[j];
      if (v === inPlace) {
        if (this.put(q, o, l, vnet)) n++;
        continue;
      }
      // Untagged in place, each other VID copied once (members are in id order, not by VID).
      if (v !== copyVid) {
        copyOff = this.taggedCopy(off, len, prio | v, vnet);
        copyVid = v;
      }
      if (copyOff >= 0 && this.put(q, copyOff, len + VLAN_TAG_LEN, vnet)) n++;
    }
    return n;
  }

  /**
   * Send every pending queue; count what the device took (tx packets, bytes without the
   * form's header) and what it did not. Returns how many frames left.
   */
  flush(): number {
    const stats = this.stats;
    let total = 0;
    for (let k = 0; k < this.dirty.length; k++) {
      const q = this.dirty[k];
      let sent = 0;
      let reason = TX_REFUSED;
      try {
        sent = this.device.transmit(q);
      } catch {
        reason = TX_ERROR;
      }
      if (stats !== null) {
        const hdr = formHeaderLen(q.form);
        let bytes = 0;
        for (let j = 0; j < sent; j++) bytes += q.txLens[j] - hdr;
        const row = q.id * this.row;
        stats[row + this.txPackets] += sent;
        stats[row + this.txBytes] += bytes;
        const vx = q.vx;
        if (vx !== undefined) for (let j = 0; j < sent; j++) vx.countTx(vx.txSlots[j], vx.txInner[j]);
        if (sent < q.txN) stats[row + this.drop0 + reason] += q.txN - sent;
      }
      total += sent;
      q.txN = 0;
    }
    this.dirty.length = 0;
    return total;
  }

  /**
   * The port's own form of buf[off, off+len) (a virtio-net header first when `vnet`), queued.
   * false when it cannot be built (no scratch room for a header).
   */
  private put(q: P, off: number, len: number, vnet: boolean): boolean {
    switch (q.form) {
      case FORM_VNET:
        if (vnet) {
          this.enqueue(q, off, len);
          return true;
        } else {
          const o = this.withZeroHeader(off, len);
          if (o < 0) return false;
          this.enqueue(q, o, len + VNET_HDR_LEN);
          return true;
        }
      case FORM_VXLAN:
        return this.putVxlan(q, off, len, vnet);
      default: // FORM_ETHERNET
        if (vnet) this.enqueue(q, off + VNET_HDR_LEN, len - VNET_HDR_LEN);
        else this.enqueue(q, off, len);
        return true;
    }
  }

  private enqueue(q: P, off: number, len: number): void {
    const imp = q.impair;
    if (imp !== undefined) {
      imp.offer(this.buf, off, len, formHeaderLen(q.form), this.now);
      if (this.notes !== null) this.notes.push({ port: q.id, dir: 'out', flags: imp.lastFlags, delay: imp.lastDelay });
      return;
    }
    this.send(q, off, len);
  }

  /**
   * An impaired port's frames that are due at `now` (ms), into its transmit queue (at most
   * what the scratch area holds between flushes; flush() afterwards). Returns how many.
   */
  release(q: P, now: number): number {
    const imp = q.impair;
    if (imp === undefined) return 0;
    this.releasing = q;
    const n = imp.due(now, this.releaseSink);
    this.releasing = null;
    return n;
  }

  private send(q: P, off: number, len: number): void {
    // A full queue (a batch plus made frames) goes out before it overflows.
    if (q.txN === q.txOffs.length) this.flush();
    if (q.txN === 0) this.dirty.push(q);
    q.txOffs[q.txN] = off;
    q.txLens[q.txN] = len;
    q.txN++;
  }

  /**
   * FORM_VXLAN: the frame (a virtio-net header first when `vnet`) copied behind UDP + VXLAN
   * headers into scratch -- cut into segments when it is a GSO frame, its partial checksum
   * finished -- and queued to the VTEP of its destination MAC, or to every peer.
   */
  private putVxlan(q: P, off: number, len: number, vnet: boolean): boolean {
    const vx = q.vx;
    if (vx === undefined) return false;
    const buf = this.buf;
    const eth = vnet ? off + VNET_HDR_LEN : off;
    const ethLen = vnet ? len - VNET_HDR_LEN : len;
    if (ethLen < ETH_HDR_LEN) return false;
    // The network's host address and gateway are this host's own (every vsw host has them).
    if (vx.isLocalMac(macHi(buf, eth + 6), macLo(buf, eth + 6))) {
      this.drop(q.id, VX_HOST_MAC);
      return true;
    }
    let dst = 0;
    if ((buf[eth] & 1) === 0 && this.vteps !== null) dst = this.vteps.lookupVtep(vx.net, 0, macHi(buf, eth), macLo(buf, eth));
    if (dst === 0 && vx.peerAddrs.length === 0) return false;
    const gso = vnet ? buf[off + 1] & ~VNET_GSO_ECN : 0;
    if (gso !== 0) {
      const plan = this.plan;
      const mss = buf[off + 4] | (buf[off + 5] << 8);
      if (gso !== VNET_GSO_TCPV4 || !planTcp4(buf, eth, ethLen, mss, plan)) {
        this.drop(q.id, VX_NO_GSO);
        return true;
      }
      const sport = flowSourcePort(buf, eth, ethLen);
      if (vx.socks.length > 0 && plan.segments > 1) return this.putVxlanGso(q, vx, eth, plan, sport, dst);
      for (let k = 0; k < plan.segments; k++) {
        const segLen = segmentLength(plan, k);
        const s = this.scratch(VXLAN_OUTER_LEN + segLen);
        if (s < 0) return false;
        writeSegment(buf, eth, plan, k, buf, s + VXLAN_OUTER_LEN);
        writeOuter(buf, s, sport, vx.dport, vx.vni, segLen);
        this.toVteps(q, vx, s, VXLAN_OUTER_LEN + segLen, segLen, dst, 0);
      }
      return true;
    }
    const s = this.scratch(VXLAN_OUTER_LEN + ethLen);
    if (s < 0) return false;
    const inner = s + VXLAN_OUTER_LEN;
    buf.copyWithin(inner, eth, eth + ethLen);
    if (vnet && (buf[off] & VNET_F_NEEDS_CSUM) !== 0) {
      finishChecksum(buf, inner, ethLen, buf[off + 6] | (buf[off + 7] << 8), buf[off + 8] | (buf[off + 9] << 8));
    }
    writeOuter(buf, s, flowSourcePort(buf, inner, ethLen), vx.dport, vx.vni, ethLen);
    this.toVteps(q, vx, s, VXLAN_OUTER_LEN + ethLen, ethLen, dst, 0);
    return true;
  }

  /**
   * A GSO frame toward a VTEP with UDP send sockets (UDP GSO, io.sendVxlan): up to
   * VX_GSO_MAX segments and VX_GSO_BYTES per entry (a 64 KB frame is two entries), written back to back behind one UDP header, each
   * VXLAN header + segment exactly `seg` bytes (the last may be shorter); the kernel cuts
   * the entry into datagrams (or hands it whole to a veth).
   */
  private putVxlanGso(q: P, vx: VxlanPort, eth: number, plan: SegPlan, sport: number, dst: number): boolean {
    const buf = this.buf;
    const seg = VXLAN_HDR_LEN + plan.hdrLen + plan.mss;
    // At most 64 segments and 65507 bytes (the largest UDP payload) per send.
    const per = Math.max(1, Math.min(VX_GSO_MAX, Math.floor(VX_GSO_BYTES / seg)));
    for (let k0 = 0; k0 < plan.segments; k0 += per) {
      const k1 = Math.min(plan.segments, k0 + per);
      let need = UDP_HDR_LEN;
      for (let k = k0; k < k1; k++) need += VXLAN_HDR_LEN + segmentLength(plan, k);
      const s = this.scratch(need);
      if (s < 0) return false;
      let at = s + UDP_HDR_LEN;
      let inner = 0;
      for (let k = k0; k < k1; k++) {
        writeVxlanHeader(buf, at, vx.vni);
        const l = writeSegment(buf, eth, plan, k, buf, at + VXLAN_HDR_LEN);
        inner += l;
        at += VXLAN_HDR_LEN + l;
      }
      writeU16(buf, s, sport);
      writeU16(buf, s + 2, vx.dport);
      writeU16(buf, s + 4, 0);
      writeU16(buf, s + 6, 0);
      this.toVteps(q, vx, s, need, inner, dst, k1 - k0 > 1 ? seg : 0);
    }
    return true;
  }

  /** Queue one datagram to `dst`, or (dst 0) once per peer: the same bytes each time. */
  private toVteps(q: P, vx: VxlanPort, off: number, len: number, inner: number, dst: number, seg: number): void {
    if (dst !== 0) {
      this.enqueueTo(q, vx, off, len, dst, vx.slotOf(dst), inner, seg);
      return;
    }
    const addrs = vx.peerAddrs;
    for (let i = 0; i < addrs.length; i++) this.enqueueTo(q, vx, off, len, addrs[i], vx.peerSlots[i], inner, seg);
  }

  private enqueueTo(q: P, vx: VxlanPort, off: number, len: number, addr: number, slot: number, inner: number, seg: number): void {
    if (q.txN === q.txOffs.length) this.flush();
    if (q.txN === 0) this.dirty.push(q);
    const j = q.txN;
    q.txOffs[j] = off;
    q.txLens[j] = len;
    vx.txAddrs[j] = addr;
    vx.txSlots[j] = slot;
    vx.txInner[j] = inner;
    vx.txSegs[j] = seg;
    q.txN = j + 1;
  }

  private drop(port: number, reason: number): void {
    const stats = this.stats;
    if (stats !== null) stats[port * this.row + this.drop0 + reason]++;
  }

  /** `need` bytes of scratch, flushing first when full; the offset, or -1 when it can never fit. */
  private scratch(need: number): number {
    if (need > this.scratchBytes) return -1;
    if (this.used + need > this.scratchBytes) {
      this.flush();
      this.flushes++;
      this.used = 0;
    }
    const at = this.scratchOff + this.used;
    this.used += need;
    this.copies++;
    return at;
  }

  /** A tagged copy of the frame in the scratch area: its offset, or -1 when it cannot fit. */
  private taggedCopy(off: number, len: number, tci: number, vnet: boolean): number {
    // 4 bytes of headroom for the tag, then the frame.
    const s = this.scratch(len + VLAN_TAG_LEN);
    if (s < 0) return -1;
    const at = s + VLAN_TAG_LEN;
    this.buf.copyWithin(at, off, off + len);
    return pushTag(this.buf, at, len, ETHERTYPE_VLAN, tci, vnet);
  }

  /** A copy of a frame without a virtio-net header, behind an all-zero one; -1 when it cannot fit. */
  private withZeroHeader(off: number, len: number): number {
    const at = this.scratch(len + VNET_HDR_LEN);
    if (at < 0) return -1;
    writeEmptyVnetHdr(this.buf, at);
    this.buf.copyWithin(at + VNET_HDR_LEN, off, off + len);
    return at;
  }
}

/** The VID every member but `except` sends the network with, if it is one VID; else 0. */
function commonVid(members: Int32Array, vids: Uint16Array, except: number): number {
  let vid = 0;
  for (let j = 0; j < members.length; j++) {
    if (members[j] === except) continue;
    const v = vids[j];
    if (v === 0 || (vid !== 0 && v !== vid)) return 0;
    vid = v;
  }
  return vid;
}
