// The port table: which network each port belongs to, and each network's member ports
// (the flood list). Keyed by port id (< maxPorts) and network id (< maxNets); bounded by
// those two numbers; nothing ages (ports come and go by control messages). Every worker
// holds its own copy, updated by the same messages in the same order.

export const NO_NET = -1;

export interface PortEntry {
  id: number;
  name: string;
  netId: number;
}

export class PortTable {
  readonly maxPorts: number;
  /** netId of each port, NO_NET when the port is absent. */
  readonly netOf: Int32Array;
  private readonly names: (string | undefined)[];
  /** Member port ids per network. Rebuilt on change; read on every flood. */
  private readonly members = new Map<number, Int32Array>();
  private static readonly NONE = new Int32Array(0);

  constructor(maxPorts: number) {
    this.maxPorts = maxPorts;
    this.netOf = new Int32Array(maxPorts).fill(NO_NET);
    this.names = new Array(maxPorts);
  }

  add(id: number, name: string, netId: number): void {
    if (id < 0 || id >= this.maxPorts) throw new RangeError(`port id ${id} out of range`);
    if (this.netOf[id] !== NO_NET) this.remove(id);
    this.netOf[id] = netId;
    this.names[id] = name;
    this.rebuild(netId);
  }

  remove(id: number): void {
    const net = this.netOf[id];
    if (net === NO_NET) return;
    this.netOf[id] = NO_NET;
    this.names[id] = undefined;
    this.rebuild(net);
  }

  /** Ports of a network (do not modify the array). */
  portsOf(netId: number): Int32Array {
    return this.members.get(netId) ?? PortTable.NONE;
  }

  name(id: number): string | undefined {
    return this.names[id];
  }

  list(): PortEntry[] {
    const out: PortEntry[] = [];
    for (let i = 0; i < this.maxPorts; i++) {
      if (this.netOf[i] !== NO_NET) out.push({ id: i, name: this.names[i] ?? '', netId: this.netOf[i] });
    }
    return out;
  }

  private rebuild(netId: number): void {
    const ids: number[] = [];
    for (let i = 0; i < this.maxPorts; i++) if (this.netOf[i] === netId) ids.push(i);
    if (ids.length === 0) this.members.delete(netId);
    else this.members.set(netId, Int32Array.from(ids));
  }
}
