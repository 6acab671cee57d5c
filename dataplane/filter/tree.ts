// The compiled filter: a tree of small closures over the Decoded fields (decode.ts) and,
// for MACs, the frame itself.
// Leaves compare one field; `and`/`or` short-circuit. Nothing here allocates per frame.

import * as ethernet from '../wire/ethernet';
import * as mac from '../wire/mac';
import type { Decoded } from './decode';

// Bound once, as in decode.ts (a use of an imported name is a property load per frame).
const ETH_DST_OFF = ethernet.ETH_DST_OFF;
const ETH_SRC_OFF = ethernet.ETH_SRC_OFF;
const macHi = mac.macHi;
const macLo = mac.macLo;
const macIsBroadcast = mac.isBroadcast;
const macIsMulticast = mac.isMulticast;

export type Pred = (d: Decoded, buf: Uint8Array) => boolean;

export const DIR_EITHER = 0;
export const DIR_SRC = 1;
export const DIR_DST = 2;

export const WHICH_BOTH = 0; // IPv4 or ARP
export const WHICH_IP = 1;
export const WHICH_ARP = 2;

export function macLeaf(dir: number, hi: number, lo: number): Pred {
  if (dir === DIR_SRC) {
    return (d, buf) => d.l2 && macHi(buf, d.off + ETH_SRC_OFF) === hi && macLo(buf, d.off + ETH_SRC_OFF) === lo;
  }
  if (dir === DIR_DST) {
    return (d, buf) => d.l2 && macHi(buf, d.off + ETH_DST_OFF) === hi && macLo(buf, d.off + ETH_DST_OFF) === lo;
  }
  return (d, buf) => d.l2 && ((macHi(buf, d.off + ETH_DST_OFF) === hi && macLo(buf, d.off + ETH_DST_OFF) === lo) ||
    (macHi(buf, d.off + ETH_SRC_OFF) === hi && macLo(buf, d.off + ETH_SRC_OFF) === lo));
}

/** net and mask as int32 (net already masked). */
export function ipLeaf(dir: number, which: number, net: number, mask: number): Pred {
  const ip = which !== WHICH_ARP;
  const arp = which !== WHICH_IP;
  if (dir === DIR_SRC) {
    return (d) => (ip && d.ip && (d.ipSrc & mask) === net) || (arp && d.arp && (d.spa & mask) === net);
  }
  if (dir === DIR_DST) {
    return (d) => (ip && d.ip && (d.ipDst & mask) === net) || (arp && d.arp && (d.tpa & mask) === net);
  }
  return (d) => (ip && d.ip && ((d.ipSrc & mask) === net || (d.ipDst & mask) === net)) ||
    (arp && d.arp && ((d.spa & mask) === net || (d.tpa & mask) === net));
}

/** proto: IPPROTO_TCP, IPPROTO_UDP, or -1 for either. */
export function portLeaf(dir: number, proto: number, lo: number, hi: number): Pred {
  if (dir === DIR_SRC) {
    return (d) => (proto < 0 || d.proto === proto) && d.sport >= lo && d.sport <= hi;
  }
  if (dir === DIR_DST) {
    return (d) => (proto < 0 || d.proto === proto) && d.dport >= lo && d.dport <= hi;
  }
  return (d) => (proto < 0 || d.proto === proto) &&
    ((d.sport >= lo && d.sport <= hi) || (d.dport >= lo && d.dport <= hi));
}

export const CMP_LT = 0;
export const CMP_LE = 1;
export const CMP_GT = 2;
export const CMP_GE = 3;
export const CMP_EQ = 4;
export const CMP_NE = 5;

export function lenLeaf(op: number, n: number): Pred {
  switch (op) {
    case CMP_LT: return (d) => d.len < n;
    case CMP_LE: return (d) => d.len <= n;
    case CMP_GT: return (d) => d.len > n;
    case CMP_GE: return (d) => d.len >= n;
    case CMP_EQ: return (d) => d.len === n;
    default: return (d) => d.len !== n;
  }
}

export const isBroadcast: Pred = (d, buf) => d.l2 && macIsBroadcast(buf, d.off + ETH_DST_OFF);
export const isMulticast: Pred = (d, buf) => d.l2 && macIsMulticast(buf, d.off + ETH_DST_OFF);
export const isTagged: Pred = (d) => d.tags !== 0;
export const always: Pred = () => true;

export function etherTypeLeaf(et: number): Pred { return (d) => d.et === et; }
export function protoLeaf(p: number): Pred { return (d) => d.proto === p; }
export function vidLeaf(v: number): Pred { return (d) => d.vid === v; }
export function pcpLeaf(v: number): Pred { return (d) => d.pcp === v; }
export function icmpTypeLeaf(v: number): Pred { return (d) => d.icmpType === v; }

export function notNode(a: Pred): Pred { return (d, buf) => !a(d, buf); }

export function andNode(list: Pred[]): Pred {
  if (list.length === 1) return list[0];
  if (list.length === 2) { const [a, b] = list; return (d, buf) => a(d, buf) && b(d, buf); }
  if (list.length === 3) { const [a, b, c] = list; return (d, buf) => a(d, buf) && b(d, buf) && c(d, buf); }
  const fs = list.slice();
  const n = fs.length;
  return (d, buf) => {
    for (let i = 0; i < n; i++) if (!fs[i](d, buf)) return false;
    return true;
  };
}

export function orNode(list: Pred[]): Pred {
  if (list.length === 1) return list[0];
  if (list.length === 2) { const [a, b] = list; return (d, buf) => a(d, buf) || b(d, buf); }
  if (list.length === 3) { const [a, b, c] = list; return (d, buf) => a(d, buf) || b(d, buf) || c(d, buf); }
  const fs = list.slice();
  const n = fs.length;
  return (d, buf) => {
    for (let i = 0; i < n; i++) if (fs[i](d, buf)) return true;
    return false;
  };
}
