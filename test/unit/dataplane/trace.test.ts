// Golden traces: a set of frames through the pipeline in a dry run gives exact text.
import { describe, it, expect } from 'vitest';
import { TextTracer, traceDryRun, formatTrace, type TraceNames } from '../../../dataplane/trace';
import { L3_NONE, outcome, outcomeName } from '../../../dataplane/router/outcome';
import { OUT_LOCAL, Packet } from '../../../dataplane/packet';
import { ETHERTYPE_IPV4 } from '../../../dataplane/wire';
import { Fdb } from '../../../dataplane/tables/fdb';
import { PortTable } from '../../../dataplane/tables/ports';
import { arpRequest, icmpEcho } from '../../fixtures/frames';

const C1 = '02:42:0a:59:00:02';
const C2 = '02:42:0a:59:00:03';

function setup() {
  const fdb = new Fdb({ maxEntries: 64, maxPerPort: 16, maxPorts: 16, agingSeconds: 300 });
  const ports = new PortTable(16);
  ports.add(0, 'vsw0', 0);
  ports.add(1, 'vswaaaa0001', 0);
  ports.add(2, 'vswaaaa0002', 0);
  ports.add(3, 'vswbbbb0001', 1);
  const names: TraceNames = {
    port: (id) => ['vsw0 (host)', 'vswaaaa0001 (c1)', 'vswaaaa0002 (c2)', 'vswbbbb0001 (d1)'][id] ?? `#${id}`,
    network: (id) => ['bridge', 'netb'][id] ?? `#${id}`,
  };
  return { fdb, ports, names, tables: { fdb, ports, now: 1000 } };
}

const echo = icmpEcho({ srcMac: C1, dstMac: C2, srcIp: '10.89.0.2', dstIp: '10.89.0.3', id: 7, seq: 1 });

describe('golden dry-run traces', () => {
  it('unknown unicast: flooded to the other ports of the network, nothing learned', () => {
    const s = setup();
    const r = traceDryRun(echo, 1, s.tables, s.names);
    expect(formatTrace(r)).toBe([
      'frame   02:42:0a:59:00:02 > 02:42:0a:59:00:03, IPv4 10.89.0.2 > 10.89.0.3 ICMP echo request id 7 seq 1',
      'parse    ok: 02:42:0a:59:00:02 > 02:42:0a:59:00:03, ethertype 0x0800, 42 bytes',
      'ingress  port vswaaaa0001 (c1): network bridge, vlan 0',
      'learn    (dry run, not learned) new: 02:42:0a:59:00:02 on vswaaaa0001 (c1)',
      'gateway  pass (not for the gateway)',
      'forward  flood (unknown unicast 02:42:0a:59:00:03) to 2 port(s): vsw0 (host), vswaaaa0002 (c2)',
      '',
    ].join('\n'));
    expect(r.verdict).toEqual({ kind: 'flood', ports: ['vsw0 (host)', 'vswaaaa0002 (c2)'] });
    expect(s.fdb.counters().entries).toBe(0);
  });

  it('known unicast: one port; the source is refreshed', () => {
    const s = setup();
    s.fdb.learn(0, 0, 0x0242, 0x0a590003, 2, 990);
    s.fdb.learn(0, 0, 0x0242, 0x0a590002, 1, 990);
    const r = traceDryRun(echo, 1, s.tables, s.names);
    expect(r.steps.map((x) => x.text)).toEqual([
      'ok: 02:42:0a:59:00:02 > 02:42:0a:59:00:03, ethertype 0x0800, 42 bytes',
      'port vswaaaa0001 (c1): network bridge, vlan 0',
      '(dry run, not learned) refresh: 02:42:0a:59:00:02 on vswaaaa0001 (c1)',
      'pass (not for the gateway)',
      'known unicast 02:42:0a:59:00:03 -> vswaaaa0002 (c2)',
    ]);
    expect(r.verdict).toEqual({ kind: 'unicast', ports: ['vswaaaa0002 (c2)'] });
  });

  it('broadcast ARP: flooded; a MAC seen on another port would move', () => {
    const s = setup();
    s.fdb.learn(0, 0, 0x0242, 0x0a590002, 2, 990);
    const arp = arpRequest({ srcMac: C1, srcIp: '10.89.0.2', targetIp: '10.89.0.1' });
    const r = traceDryRun(arp, 1, s.tables, s.names);
    expect(r.frame).toBe('02:42:0a:59:00:02 > ff:ff:ff:ff:ff:ff, ARP request who-has 10.89.0.1 tell 10.89.0.2');
    expect(r.steps[2].text).toBe('(dry run, not learned) move: 02:42:0a:59:00:02 from vswaaaa0002 (c2) to vswaaaa0001 (c1)');
    expect(r.steps[4].text).toBe('flood (broadcast) to 2 port(s): vsw0 (host), vswaaaa0002 (c2)');
    expect(s.fdb.lookup(0, 0, 0x0242, 0x0a590002)).toBe(2); // still where it was
  });

  it('reflected: the destination lives behind the ingress port', () => {
    const s = setup();
    s.fdb.learn(0, 0, 0x0242, 0x0a590003, 1, 990);
    const r = traceDryRun(echo, 1, s.tables, s.names);
    expect(r.steps.at(-1)).toEqual({ stage: 'forward', text: 'drop: reflected' });
    expect(r.verdict).toEqual({ kind: 'drop', ports: [], reason: 'reflected' });
  });

  it('a runt ends at parse; an unknown port at ingress', () => {
    const s = setup();
    const runt = traceDryRun(echo.subarray(0, 10), 1, s.tables, s.names);
    expect(runt.steps).toEqual([{ stage: 'parse', text: 'drop: runt' }]);
    const lost = traceDryRun(echo, 9, s.tables, s.names);
    expect(lost.steps.map((x) => x.stage)).toEqual(['parse', 'ingress']);
    expect(lost.verdict.reason).toBe('no-such-network');
  });
});

describe('router outcomes: worded where they are decided', () => {
  function gatewayLine(code: number): string {
    const s = setup();
    const p = new Packet();
    p.reset(echo.slice(), 0, echo.length, false, 1, 0);
    p.etherType = ETHERTYPE_IPV4;
    p.l3Off = 14;
    p.l3 = code;
    p.out = OUT_LOCAL;
    const tracer = new TextTracer(s.names);
    tracer.step('gateway', p, { fdb: s.fdb, ports: s.ports, now: 1000, dryRun: true, l3: null });
    return tracer.steps[0].text;
  }

  it('an outcome a module registers is worded by its own function, trace.ts unchanged', () => {
    const code = outcome('test-outcome', (name, t) => `${name}: ${t.after.text()} seen${t.egress}`);
    expect(outcomeName(code)).toBe('test-outcome');
    expect(gatewayLine(code)).toBe('test-outcome: 10.89.0.2 > 10.89.0.3 icmp id 7 seen (consumed by the switch)');
    expect(gatewayLine(L3_NONE)).toBe('pass (not for the gateway)');
  });

  it('a code nobody registered is named by its number; a name cannot be registered twice', () => {
    expect(gatewayLine(9999)).toBe('#9999: (consumed by the switch)');
    expect(() => outcome('none', () => '')).toThrow(/registered twice/);
  });
});
