// vlan-egress: the last step of a frame, run by the worker loop for each port the verdict
// names (it is not a pipeline stage: one frame may leave in several forms). The pipeline
// hands over the frame untagged (ingress removed any tag); here it gets the tag of its VLAN
// for every port that carries that VLAN tagged (trunks, a tagged uplink), with the PCP/DEI
// it arrived with (p.prio), and leaves untagged everywhere else.
//
// Zero copy where possible: a frame for one port, or for ports that all want the same form,
// is tagged in place (pushTag uses the 4 bytes of headroom every frame has in the loop's
// buffer). Only a flood that needs both forms copies: the tagged form is written into a
// scratch area of the same buffer (after the receive slots and the generated frames),
// reset every batch; when the scratch is full, the pending queues are sent first (flush)
// and it starts over, so queued offsets never point at reused bytes.
//
// The untagged path pays one check: a network without tagged members (no trunk in it) has
// tagsOf() === null and the loop floods it as before, without calling this.
import type { PortTable } from '../tables/ports';
import { pushTag, VLAN_TAG_LEN } from '../wire/vlan';
import { ETHERTYPE_VLAN } from '../wire/ethernet';

/** Where frames go: the loop's per-port transmit queues. */
export interface TxSink {
  /** Queue buf[off, off+len) (vnet header first) for port. */
  tx(port: number, off: number, len: number): void;
  /** Send every queued frame now (the scratch area is about to be reused). */
  flush(): void;
}

export class VlanEgress {
  readonly name = 'vlan-egress';
  private readonly buf: Uint8Array;
  private readonly base: number;
  private readonly size: number;
  private used = 0;
  /** Frames copied to the scratch area (a flood needing a tagged and an untagged form). */
  copies = 0;
  /** Early flushes because the scratch area was full. */
  flushes = 0;

  constructor(buf: Uint8Array, scratchOff: number, scratchBytes: number) {
    if (scratchOff < 0 || scratchOff + scratchBytes > buf.length) throw new RangeError('vlan-egress: scratch area outside the buffer');
    this.buf = buf;
    this.base = scratchOff;
    this.size = scratchBytes;
  }

  /** A new batch: the scratch area is free again (everything queued before was sent). */
  reset(): void {
    this.used = 0;
  }

  /**
   * Queue the frame at buf[off, off+len) for `port`, as it sends network `net`. Tags it in
   * place when the port sends `net` tagged. Returns false (nothing queued) when the port does
   * not carry `net`.
   */
  unicast(ports: PortTable, sink: TxSink, port: number, net: number, prio: number, off: number, len: number, vnet: boolean): boolean {
    const vid = ports.egressVid(port, net);
    if (vid < 0) return false;
    if (vid === 0) { sink.tx(port, off, len); return true; }
    const o = pushTag(this.buf, off, len, ETHERTYPE_VLAN, prio | vid, vnet);
    if (o < 0) return false;
    sink.tx(port, o, len + VLAN_TAG_LEN);
    return true;
  }

  /**
   * Queue the frame for every port of `net` but `except`, each in its form. Returns how many
   * ports it was queued for.
   */
  flood(ports: PortTable, sink: TxSink, net: number, except: number, prio: number, off: number, len: number, vnet: boolean): number {
    const members = ports.portsOf(net);
    const vids = ports.tagsOf(net);
    let n = 0;
    if (vids === null) {
      for (let j = 0; j < members.length; j++) {
        if (members[j] === except) continue;
        sink.tx(members[j], off, len);
        n++;
      }
      return n;
    }
    // Which forms are needed: untagged, and tagged with which VID(s).
    let untagged = 0;
    let vid = 0;
    let oneVid = true;
    for (let j = 0; j < members.length; j++) {
      if (members[j] === except) continue;
      const v = vids[j];
      if (v === 0) untagged++;
      else if (vid === 0) vid = v;
      else if (v !== vid) oneVid = false;
    }
    if (vid === 0) {
      // The only tagged member is the ingress port: everyone else takes it untagged.
      for (let j = 0; j < members.length; j++) {
        if (members[j] === except) continue;
        sink.tx(members[j], off, len);
        n++;
      }
      return n;
    }
    if (untagged === 0 && oneVid) {
      // Every receiver wants the same tag: tag in place, no copy.
      const o = pushTag(this.buf, off, len, ETHERTYPE_VLAN, prio | vid, vnet);
      if (o < 0) return 0;
      for (let j = 0; j < members.length; j++) {
        if (members[j] === except) continue;
        sink.tx(members[j], o, len + VLAN_TAG_LEN);
        n++;
      }
      return n;
    }
    // Both forms (or several VIDs): untagged in place, each tagged form copied once.
    let copyVid = -1;
    let copyOff = -1;
    for (let j = 0; j < members.length; j++) {
      const m = members[j];
      if (m === except) continue;
      const v = vids[j];
      if (v === 0) { sink.tx(m, off, len); n++; continue; }
      if (v !== copyVid) {
        copyOff = this.taggedCopy(sink, off, len, prio | v, vnet);
        copyVid = v;
      }
      if (copyOff < 0) continue;
      sink.tx(m, copyOff, len + VLAN_TAG_LEN);
      n++;
    }
    return n;
  }

  /** Write a tagged copy of the frame into the scratch area; its offset, or -1 when it cannot fit. */
  private taggedCopy(sink: TxSink, off: number, len: number, tci: number, vnet: boolean): number {
    // 4 bytes of headroom for the tag, then the frame.
    const need = len + VLAN_TAG_LEN;
    if (need > this.size) return -1;
    if (this.used + need > this.size) {
      sink.flush();
      this.flushes++;
      this.used = 0;
    }
    const at = this.base + this.used + VLAN_TAG_LEN;
    this.buf.copyWithin(at, off, off + len);
    this.used += need;
    this.copies++;
    return pushTag(this.buf, at, len, ETHERTYPE_VLAN, tci, vnet);
  }
}
