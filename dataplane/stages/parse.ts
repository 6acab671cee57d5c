// parse: check the Ethernet header once and record what later stages need (MACs as numbers,
// EtherType, where the payload starts). Drops: runt (shorter than a header), truncated
// (bigger than the receive slot), rx-queue-full (cut by the kernel for want of room), bad-src-mac (a multicast or all-zero source is not a
// station: the Linux bridge drops these too), link-local (01:80:c2:00:00:0X is for the link
// itself — STP, LACP, 802.1X — and a bridge never forwards it).

import { DROP } from '../drops';
import type { Packet } from '../packet';
import type { Stage } from './stage';
import { EthernetView } from '../wire/ethernet';

const FLAG_TRUNCATED = 1;
const FLAG_CUT = 4; // with FLAG_TRUNCATED: the kernel cut it for want of queue space
const LINK_LOCAL_HI = 0x0180;
const LINK_LOCAL_LO_PREFIX = 0xc2000000;

export class ParseStage implements Stage {
  readonly name = 'parse';
  private readonly eth = new EthernetView();

  process(p: Packet): boolean {
    if (p.ioFlags & FLAG_TRUNCATED) {
      p.dropWith(p.ioFlags & FLAG_CUT ? DROP['rx-queue-full'] : DROP.truncated);
      return false;
    }
    const eth = this.eth;
    if (!eth.reset(p.buf, p.ethOff, p.ethLen)) { p.dropWith(DROP.runt); return false; }
    p.srcHi = eth.srcHi;
    p.srcLo = eth.srcLo;
    if (eth.srcIsMulticast || (p.srcHi === 0 && p.srcLo === 0)) { p.dropWith(DROP['bad-src-mac']); return false; }
    p.dstHi = eth.dstHi;
    p.dstLo = eth.dstLo;
    p.dstMulticast = eth.dstIsMulticast;
    if (p.dstHi === LINK_LOCAL_HI && (p.dstLo & 0xfffffff0) >>> 0 === LINK_LOCAL_LO_PREFIX) {
      p.dropWith(DROP['link-local']);
      return false;
    }
    p.etherType = eth.etherType;
    p.l3Off = eth.payloadOffset;
    return true;
  }
}
