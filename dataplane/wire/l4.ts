// The first four bytes of TCP and UDP are the same: source port (2), destination port (2).
// Code that needs only the ports of either (filters, connection tuples) reads them here
// without a protocol view; it checks that L4_PORTS_LEN bytes are there first.

import { readU16 } from './bytes';

export const L4_PORTS_LEN = 4;

export const L4_SRC_PORT_OFF = 0;
export const L4_DST_PORT_OFF = 2;
const SRC_PORT = L4_SRC_PORT_OFF;
const DST_PORT = L4_DST_PORT_OFF;

export function l4SrcPort(buf: Uint8Array, off: number): number { return readU16(buf, off + SRC_PORT); }
export function l4DstPort(buf: Uint8Array, off: number): number { return readU16(buf, off + DST_PORT); }
