// VLAN ids and sets as users write them (`--vlan 10`, `--vlans 10,20,30-40`), checked once
// here for the CLI (usage errors) and the API (the engine). docs/VLAN.md.

import { InvalidArgumentError } from './errors';

export const VID_MIN = 1;
export const VID_MAX = 4094;

/** A VLAN id, 1-4094 (0 is the priority tag, 4095 reserved). */
export function checkVid(v: unknown, what = 'VLAN id'): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < VID_MIN || v > VID_MAX) {
    throw new InvalidArgumentError(`invalid ${what} '${String(v)}': expected a whole number from ${VID_MIN} to ${VID_MAX}`);
  }
  return v;
}

/** Sorted, merged, inclusive ranges of VLAN ids. */
export type VlanRanges = [number, number][];

/**
 * `10,20,30-40` -> [[10,10],[20,20],[30,40]] (sorted, overlaps and neighbours merged).
 * Spaces around items are allowed; anything else is an InvalidArgumentError.
 */
export function parseVlanSet(text: string): VlanRanges {
  const items = text.split(',').map((s) => s.trim());
  if (text.trim() === '' || items.some((s) => s === '')) {
    throw new InvalidArgumentError(`invalid VLAN list '${text}': expected ids and ranges like 10,20,30-40`);
  }
  const ranges: VlanRanges = [];
  for (const item of items) {
    const m = /^(\d{1,4})(?:-(\d{1,4}))?$/.exec(item);
    if (!m) throw new InvalidArgumentError(`invalid VLAN list '${text}': '${item}' is not an id or a range like 30-40`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    for (const v of [lo, hi]) {
      if (v < VID_MIN || v > VID_MAX) throw new InvalidArgumentError(`invalid VLAN list '${text}': ${v} is not a VLAN id (${VID_MIN}-${VID_MAX})`);
    }
    if (hi < lo) throw new InvalidArgumentError(`invalid VLAN list '${text}': the range ${item} is backwards`);
    ranges.push([lo, hi]);
  }
  return normalize(ranges);
}

/** Ranges from JSON (state, API), checked and normalized. */
export function checkVlanRanges(v: unknown): VlanRanges {
  if (!Array.isArray(v) || v.length === 0) throw new InvalidArgumentError('a VLAN set must be a non-empty list of [low, high] ranges');
  return normalize(v.map((r) => {
    if (!Array.isArray(r) || r.length !== 2) throw new InvalidArgumentError('a VLAN range must be [low, high]');
    const lo = checkVid(r[0]);
    const hi = checkVid(r[1]);
    if (hi < lo) throw new InvalidArgumentError(`the VLAN range ${lo}-${hi} is backwards`);
    return [lo, hi] as [number, number];
  }));
}

function normalize(ranges: VlanRanges): VlanRanges {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: VlanRanges = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

/** [[10,10],[30,40]] -> `10,30-40`. */
export function formatVlanSet(ranges: VlanRanges): string {
  return ranges.map(([lo, hi]) => (lo === hi ? String(lo) : `${lo}-${hi}`)).join(',');
}

export function inVlanSet(ranges: VlanRanges, vid: number): boolean {
  return ranges.some(([lo, hi]) => vid >= lo && vid <= hi);
}
