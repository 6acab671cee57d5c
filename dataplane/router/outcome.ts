// What the router did with a frame (Packet.l3), and how a trace says it. Each router module
// registers the outcomes it decides, with their wording, beside the code that decides them
// (`export const L3_PING = outcome('ping', ...)` in local.ts); the tracer (dataplane/trace.ts)
// only looks the code up here. A new outcome is one outcome() call in the module that sets it.
//
// Codes are numbered in the order the modules load. They never leave the thread: the tracer
// that reads p.l3 runs where the gateway stage set it, over the same registry.

import type { Packet } from '../packet';
import type { StageContext } from '../stages/stage';

/** An IPv4 flow as the tracer read it from the frame (dataplane/trace.ts). */
export interface TracedFlow {
  /** false when the frame held no IPv4 header to read */
  readonly ok: boolean;
  readonly proto: number;
  readonly src: number;
  readonly dst: number;
  /** TCP/UDP ports; ICMP echo: the identifier in both; -1 when absent */
  readonly sport: number;
  readonly dport: number;
  /** `10.0.0.2:40000 > 10.0.0.1:53`, `10.0.0.2 > 10.0.0.1 icmp id 7`, ... */
  text(): string;
}

/** What an outcome's wording may look at: the frame after the router, and its flow before and after. */
export interface OutcomeTrace {
  readonly p: Packet;
  readonly ctx: StageContext;
  readonly before: TracedFlow;
  readonly after: TracedFlow;
  /** Where the frame goes next, as the end of the line: ' -> PORT', ' (consumed by the switch)', ', continue'. */
  readonly egress: string;
}

/** Words one outcome: `name` is the outcome's own name, to start the line with. */
export type OutcomeWording = (name: string, t: OutcomeTrace) => string;

const NAMES: string[] = [];
const WORDINGS: OutcomeWording[] = [];

/** Register an outcome; returns its code, for Packet.l3. */
export function outcome(name: string, wording: OutcomeWording): number {
  if (NAMES.includes(name)) throw new Error(`router outcome registered twice: ${name}`);
  NAMES.push(name);
  WORDINGS.push(wording);
  return NAMES.length - 1;
}

/** The name of an outcome code ('#N' for a code no module registered). */
export function outcomeName(code: number): string {
  return NAMES[code] ?? `#${code}`;
}

/** The trace line of the outcome in t.p.l3. */
export function describeOutcome(t: OutcomeTrace): string {
  const w = WORDINGS[t.p.l3];
  return w === undefined ? `${outcomeName(t.p.l3)}:${t.egress}` : w(NAMES[t.p.l3], t);
}

/** Wording of an outcome that forwards the packet: its flow, and what translation made of it. */
export function describeFlow(name: string, t: OutcomeTrace): string {
  if (!t.before.ok || !t.after.ok) return `${name}:${t.egress}`;
  const was = t.before.text();
  const now = t.after.text();
  return `${name}: ${was}${now === was ? '' : ` => ${now}`}${t.egress}`;
}

/** Not the router's business: on to L2 forwarding (set by the gateway stage before anything else). */
export const L3_NONE = outcome('none', () => 'pass (not for the gateway)');
