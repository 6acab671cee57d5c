// control/engine/impair.ts over a fake dataplane host: what the workers are told, what
// state.json keeps, `uplink`, ports that cannot be impaired, restore and prune.
import { describe, it, expect } from 'vitest';
import { Impairs } from '../../../control/engine/impair';
import { Records } from '../../../control/engine/records';
import { PortBook } from '../../../control/engine/ports';
import type { ImpairSpec } from '../../../dataplane/impair/spec';
import type { PortHandle } from '../../../workers/host';

function setup(uplink?: string) {
  const ports: PortHandle[] = [
    { id: 1, name: 'vswaaaa', kind: 'afpacket', netId: 0, vnet: true, worker: 0, fd: 5, vlans: { untagged: 0, pvid: 0, tagged: [] } },
    { id: 2, name: 'eth9', kind: 'afpacket', netId: 4095, vnet: true, worker: 1, fd: 6, vlans: { untagged: 4095, pvid: 0, tagged: [] } },
    { id: 3, name: 'vxlan1', kind: 'vxlan', netId: 1, vnet: false, worker: 0, fd: 7, vlans: { untagged: 1, pvid: 0, tagged: [] } },
  ];
  const sent: [number, { in?: ImpairSpec; out?: ImpairSpec }][] = [];
  let saves = 0;
  const records = new Records();
  const host = {
    ports: () => ports,
    port: (id: number) => ports.find((p) => p.id === id),
    setImpair: async (id: number, spec: { in?: ImpairSpec; out?: ImpairSpec }) => { sent.push([id, spec]); },
  };
  const byName = (n: string): number => {
    const p = ports.find((x) => x.name === n);
    if (!p) throw new Error(`no port or container named '${n}'`);
    return p.id;
  };
  const imp = new Impairs({ records, ports: new PortBook(), host, store: { save: () => { saves++; } }, resolve: byName, uplink });
  return { imp, ports, sent, records, saves: () => saves };
}

describe('Impairs (the engine\'s impaired ports)', () => {
  it('sends each direction to the workers, keeps the record by interface name, saves', async () => {
    const s = setup();
    const info = await s.imp.set({ port: 'vswaaaa', direction: 'both', delay: '5ms', seed: 10 });
    expect(info).toMatchObject({ port: 'vswaaaa', portId: 1, direction: 'both', seed: 10, settings: 'delay 5ms' });
    const [id, spec] = s.sent[0];
    expect(id).toBe(1);
    expect([spec.out?.seed, spec.in?.seed]).toEqual([10, 11]);
    expect(s.records.state.impairs).toEqual([{ port: 'vswaaaa', direction: 'both', spec: spec.out }]);
    expect(s.saves()).toBe(1);
    await s.imp.set({ port: 'vswaaaa', loss: '1%', seed: 3 });
    expect(s.records.state.impairs).toHaveLength(1);
    expect(s.sent[1][1]).toEqual({ out: expect.objectContaining({ loss: 0.01, seed: 3 }) });
    await s.imp.remove('vswaaaa');
    expect(s.sent[2]).toEqual([1, {}]);
    expect(s.records.state.impairs).toEqual([]);
    await expect(s.imp.remove('vswaaaa')).rejects.toThrow(/is not impaired/);
  });

  it('`uplink` names the --uplink device; an overlay port is refused; a bad value changes nothing', async () => {
    const s = setup('eth9');
    expect((await s.imp.set({ port: 'uplink', delay: '1ms' })).port).toBe('eth9');
    await expect(setup().imp.set({ port: 'uplink', delay: '1ms' })).rejects.toThrow(/no uplink/);
    await expect(s.imp.set({ port: 'vxlan1', delay: '1ms' })).rejects.toThrow(/VXLAN overlay port/);
    await expect(s.imp.set({ port: 'eth9', delay: '1' })).rejects.toThrow(/a time with its unit/);
    expect(s.records.state.impairs?.map((r) => r.spec.delay)).toEqual([1]);
    expect(s.sent).toHaveLength(1);
  });

  it('restore() puts the records back on their ports and forgets those of ports gone; prune() after a removal', async () => {
    const s = setup();
    await s.imp.set({ port: 'vswaaaa', delay: '2ms' });
    await s.imp.set({ port: 'eth9', delay: '3ms' });
    s.sent.length = 0;
    s.ports.splice(1, 1); // eth9 went away while the daemon was down
    const log: string[] = [];
    await s.imp.restore((l) => log.push(l));
    expect(s.sent.map(([id]) => id)).toEqual([1]);
    expect(log).toEqual(['impairment of port eth9 forgotten: the port is gone']);
    expect(s.imp.list().map((i) => i.port)).toEqual(['vswaaaa']);
    expect(s.imp.prune()).toBe(false);
    s.ports.splice(0, 1);
    expect(s.imp.prune()).toBe(true);
    expect(s.imp.list()).toEqual([]);
  });
});
