// What a stage is. A stage makes one decision about one frame: it records what it found on
// the Packet and returns true to pass the frame on, or sets a final verdict (an egress port,
// flood, or a drop reason) and returns false. Stages never send, never allocate per frame,
// and read the clock only through the context.

import type { Fdb } from '../tables/fdb';
import type { PortTable } from '../tables/ports';
import type { Packet } from '../packet';

export interface StageContext {
  fdb: Fdb;
  ports: PortTable;
  /** Whole seconds, from the injected clock; set once per batch. */
  now: number;
  /** When true, nothing may change state (no learning): a dry-run trace. */
  dryRun: boolean;
}

export interface Stage {
  readonly name: string;
  process(p: Packet, ctx: StageContext): boolean;
}
