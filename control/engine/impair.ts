// Link impairment (vsw impair set|rm|ls): which ports are impaired, kept in state.json by
// interface name and sent to the workers (workers/host.ts setImpair). A port is named as
// everywhere else (interface name, container, CONTAINER:NETWORK, trunk device, `uplink`).
// After a restart the settings come back once the ports are attached (restore()); a port
// that goes away takes its settings with it (prune(), after every change of the switch).

import { randomInt } from 'node:crypto';
import { InvalidArgumentError, NotFoundError } from '../errors';
import { impairText, parseImpair, type ImpairRequest } from '../impair';
import type { ImpairInfo } from '../types';
import type { DataplaneHost } from '../../workers/host';
import type { ImpairSpec } from '../../dataplane/impair/spec';
import { UPLINK_NET } from '../../dataplane/tables/neigh';
import type { ImpairRecord, Records, Saver } from './records';
import { portRefs, type PortBook } from './ports';

export interface ImpairDeps {
  records: Records;
  ports: PortBook;
  host: Pick<DataplaneHost, 'ports' | 'port' | 'setImpair'>;
  store: Saver;
  /** A port id from a port name, container or CONTAINER:NETWORK (control/engine/observe.ts). */
  resolve: (spec: string) => number;
  /** The uplink's device (--uplink), which `uplink` names; absent: the daemon has none. */
  uplink?: string;
}

/** What each direction of a record sends to the workers: `in` has its own generator (seed + 1). Also what a snapshot keeps. */
export function directions(r: ImpairRecord): { in?: ImpairSpec; out?: ImpairSpec } {
  const inSpec = { ...r.spec, seed: (r.spec.seed + 1) >>> 0 };
  if (r.direction === 'out') return { out: r.spec };
  if (r.direction === 'in') return { in: r.spec };
  return { out: r.spec, in: inSpec };
}

export class Impairs {
  constructor(private readonly d: ImpairDeps) {}

  private list_(): ImpairRecord[] {
    const s = this.d.records.state;
    return (s.impairs ??= []);
  }

  /** The port a request names: `uplink` as well as what resolve() knows. Not an overlay or VTEP port. */
  private portOf(spec: string): { id: number; name: string } {
    const { host } = this.d;
    const up = this.d.uplink;
    const id = spec === 'uplink'
      ? (up === undefined ? undefined : host.ports().find((p) => p.name === up)?.id) ?? -1
      : this.d.resolve(spec);
    const h = id < 0 ? undefined : host.port(id);
    if (h === undefined) throw new NotFoundError(spec === 'uplink' ? 'the daemon has no uplink (--uplink)' : `no port '${spec}'`);
    if (h.kind === 'vxlan' || h.kind === 'vtep') {
      throw new InvalidArgumentError(`'${spec}' is a VXLAN ${h.kind === 'vxlan' ? 'overlay' : 'VTEP'} port: impair the containers' ports instead`);
    }
    return { id, name: h.name };
  }

  async set(req: ImpairRequest): Promise<ImpairInfo> {
    const { direction, spec } = parseImpair(req, randomInt(0, 0xffffffff));
    const port = this.portOf(req.port);
    const rec: ImpairRecord = { port: port.name, direction, spec };
    await this.d.host.setImpair(port.id, directions(rec));
    const list = this.list_();
    const at = list.findIndex((r) => r.port === port.name);
    if (at >= 0) list[at] = rec;
    else list.push(rec);
    this.d.store.save();
    return this.info(rec);
  }

  async remove(portSpec: string): Promise<void> {
    const port = this.portOf(portSpec);
    const list = this.list_();
    const at = list.findIndex((r) => r.port === port.name);
    if (at < 0) throw new NotFoundError(`port '${portSpec}' is not impaired`);
    await this.d.host.setImpair(port.id, {});
    list.splice(at, 1);
    this.d.store.save();
  }

  list(): ImpairInfo[] {
    return this.list_().map((r) => this.info(r)).sort((a, b) => a.port.localeCompare(b.port));
  }

  /** After a start: every stored impairment back on its port; those of ports that are gone, forgotten. */
  async restore(log: (line: string) => void): Promise<void> {
    const list = this.list_();
    for (const r of [...list]) {
      const h = this.d.host.ports().find((p) => p.name === r.port);
      if (h === undefined) {
        log(`impairment of port ${r.port} forgotten: the port is gone`);
        list.splice(list.indexOf(r), 1);
        continue;
      }
      await this.d.host.setImpair(h.id, directions(r));
    }
  }

  /** Forget the impairments of ports that went away (a container, network or trunk removed). true when any was. */
  prune(): boolean {
    const list = this.d.records.state.impairs;
    if (list === undefined || list.length === 0) return false;
    const names = new Set(this.d.host.ports().map((p) => p.name));
    const keep = list.filter((r) => names.has(r.port));
    if (keep.length === list.length) return false;
    this.d.records.state.impairs = keep;
    return true;
  }

  private info(r: ImpairRecord): ImpairInfo {
    const h = this.d.host.ports().find((p) => p.name === r.port);
    const ref = h === undefined ? undefined : portRefs([h], this.d.ports.places(), UPLINK_NET)[0];
    return {
      port: r.port, portId: h?.id ?? -1, network: ref?.network ?? '', ...(ref?.container ? { container: ref.container } : {}),
      direction: r.direction, settings: impairText(r.spec), seed: r.spec.seed, spec: r.spec,
    };
  }
}
