// control/engine/observe.ts over a stand-in host: how ports are named in stats, --port
// resolution, and that live traces label ports as dry runs do.
import { describe, expect, it } from 'vitest';
import { Observer, type ObserveDeps } from '../../control/engine/observe';
import { PortBook } from '../../control/engine/ports';
import { Records } from '../../control/engine/records';
import { EventBus } from '../../control/events';
import { UPLINK_NET } from '../../dataplane/tables/neigh';
import { NO_NET } from '../../dataplane/tables/ports';
import type { PortHandle } from '../../workers/host';

const handle = (id: number, name: string, netId: number, kind: 'afpacket' | 'tap' = 'afpacket'): PortHandle =>
  ({ id, name, kind, netId, vnet: true, worker: 0, fd: -1, vlans: { untagged: netId, pvid: 0, tagged: [] } });

function setup(): Observer {
  const records = new Records();
  records.state = {
    networks: [{ name: 'bridge', id: 0, subnet: '10.89.0.0/24', gateway: '10.89.0.1', ipRange: '10.89.0.0/24', mtu: 1500, default: true, created: '', tap: 'vsw0' }],
    containers: [{
      name: 'web', id: 'aaaa', mode: 'bridge', netns: 'web', cmd: [], detach: false, rm: false, status: 'created', created: '',
      endpoints: [{ network: 'bridge', ip: '10.89.0.2', mac: '02:42:0a:59:00:02', hostIf: 'vswaaaa0001', innerIf: 'eth0' }],
    }],
  };
  const ports = new PortBook();
  const all = [handle(0, 'vsw0', 0, 'tap'), handle(1, 'vswaaaa0001', 0), handle(2, 'trunk0', NO_NET), handle(3, 'up0', UPLINK_NET)];
  ports.setTap('bridge', all[0]);
  ports.setEndpoint('bridge', 'web', all[1]);
  ports.setTrunk('trunk0', all[2]);
  const counters = { rxPackets: 1, rxBytes: 60, txPackets: 2, txBytes: 120, drops: {} };
  const host = {
    ports: () => all, port: (id: number) => all[id], portCounters: () => counters,
  } as unknown as ObserveDeps['host'];
  return new Observer({ records, ports, host, captures: {} as ObserveDeps['captures'], router: {} as ObserveDeps['router'], events: new EventBus() });
}

describe('engine observation', () => {
  it('stats name every port: network, container, trunk, uplink', () => {
    expect(setup().stats().map((p) => [p.id, p.name, p.network, p.container])).toEqual([
      [0, 'vsw0', 'bridge', undefined], [1, 'vswaaaa0001', 'bridge', 'web'], [2, 'trunk0', 'trunk', undefined], [3, 'up0', 'uplink', undefined],
    ]);
  });

  it('--port: a port name, a container, CONTAINER:NETWORK', () => {
    const o = setup();
    expect(['up0', 'trunk0', 'web', 'web:bridge', 'vswaaaa0001'].map((s) => o.resolvePortId(s))).toEqual([3, 2, 1, 1, 1]);
    expect(() => o.resolvePortId('web:other')).toThrow("container 'web' has no port on network 'other'");
    expect(() => o.resolvePortId('nope')).toThrow("no port or container named 'nope' (see vsw stats, vsw ps)");
  });

  it('live traces get the port labels dry runs print', () => {
    expect(setup().tapNames()).toEqual({
      ports: [[0, 'vsw0 (host)'], [1, 'vswaaaa0001 (web)'], [2, 'trunk0 (trunk)'], [3, 'up0 (uplink)']],
      nets: [[0, 'bridge']],
    });
  });
});
