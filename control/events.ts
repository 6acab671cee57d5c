// `vsw events`: what changes in the switch, as it happens. MAC table changes come from the
// dataplane (workers/events.ts), drained every 200 ms and named here; ports, containers and
// networks are announced by the engine as it changes them. Subscribers get every event
// after they subscribe; nothing is kept for late subscribers.

import {
  FDB_EV_AGED, FDB_EV_EVICTED, FDB_EV_FULL, FDB_EV_LEARNED, FDB_EV_MOVED,
} from '../dataplane/tables/fdb';
import type { CtEvent, FdbEvent } from '../workers/events';

/** Every kind of event, named once. */
export const EVENT_TYPES = [
  'mac-learned', 'mac-moved', 'mac-aged', 'mac-evicted', 'table-full', 'port-up', 'port-down',
  'container-start', 'container-exit', 'container-remove', 'network-create', 'network-remove',
  'conntrack-new', 'conntrack-expired', 'conntrack-removed',
  // Not changes in the switch but the API's notes (control/api/stream.ts): `ready`, the first
  // line of every /events stream (subscribed: nothing after it is missed), and `skipped`,
  // {count} events a slow reader missed while its queue was full.
  'ready', 'skipped',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export interface VswEvent {
  time: string;   // ISO
  type: EventType;
  [field: string]: unknown;
}

const FDB_TYPES: Record<number, EventType> = {
  [FDB_EV_LEARNED]: 'mac-learned', [FDB_EV_MOVED]: 'mac-moved', [FDB_EV_AGED]: 'mac-aged',
  [FDB_EV_EVICTED]: 'mac-evicted', [FDB_EV_FULL]: 'table-full',
};

export interface EventNames {
  network(id: number): string;
  port(id: number): { port: string; container?: string };
}

export class EventBus {
  private readonly subs = new Set<(e: VswEvent) => void>();

  subscribe(fn: (e: VswEvent) => void): () => void {
    this.subs.add(fn);
    return () => { this.subs.delete(fn); };
  }

  get listening(): boolean {
    return this.subs.size > 0;
  }

  emit(type: EventType, fields: Record<string, unknown>, timeMs = Date.now()): void {
    if (this.subs.size === 0) return;
    const e: VswEvent = { time: new Date(timeMs).toISOString(), type, ...fields };
    for (const fn of this.subs) {
      try { fn(e); } catch { /* a broken subscriber does not stop the others */ }
    }
  }

  /** Name and announce MAC table changes from the dataplane. */
  emitFdb(events: FdbEvent[], names: EventNames): void {
    for (const ev of events) {
      const type = FDB_TYPES[ev.kind];
      if (!type) continue;
      const p = names.port(ev.port);
      const fields: Record<string, unknown> = {
        network: names.network(ev.net), mac: ev.mac, vlan: ev.vlan, port: p.port, container: p.container,
      };
      if (ev.kind === FDB_EV_MOVED) {
        const o = names.port(ev.oldPort);
        fields.fromPort = o.port;
        fields.fromContainer = o.container;
      }
      this.emit(type, fields, ev.timeMs);
    }
  }
}

const CT_TYPES: Record<number, EventType> = { 1: 'conntrack-new', 2: 'conntrack-expired', 3: 'conntrack-removed' };
const PROTOS: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp' };
const CT_KINDS = ['masquerade', 'dnat', 'dns'];

/** Name and announce connection events (numbers to text). */
export function emitConntrack(bus: Pick<EventBus, 'emit'>, events: CtEvent[], network: (id: number) => string): void {
  const ip = (n: number): string => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  for (const e of events) {
    const type = CT_TYPES[e.kind];
    if (!type) continue;
    bus.emit(type, {
      proto: PROTOS[e.proto] ?? String(e.proto), kind: CT_KINDS[e.ctKind] ?? String(e.ctKind), network: network(e.net),
      orig: `${ip(e.orig.src)}:${e.orig.sport} > ${ip(e.orig.dst)}:${e.orig.dport}`,
      reply: `${ip(e.reply.src)}:${e.reply.sport} > ${ip(e.reply.dst)}:${e.reply.dport}`,
    }, e.timeMs);
  }
}

/** One line of text for an event (the CLI's default format). */
export function formatEvent(e: VswEvent): string {
  const rest = Object.entries(e)
    .filter(([k, v]) => k !== 'time' && k !== 'type' && v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return `${e.time} ${e.type}${rest.length ? ' ' + rest.join(' ') : ''}`;
}
