// Golden dry-run traces of the VLAN decisions: what ingress did with the tag, and how each
// egress port sends the frame (tagged on a trunk).
import { describe, it, expect } from 'vitest';
import { traceDryRun, formatTrace, type TraceNames } from '../../../dataplane/trace';
import { Fdb } from '../../../dataplane/tables/fdb';
import { NO_NET, PortTable } from '../../../dataplane/tables/ports';
import { arpRequest, icmpEcho, tagged } from '../../fixtures/frames';

function setup() {
  const fdb = new Fdb({ maxEntries: 64, maxPerPort: 16, maxPorts: 16, agingSeconds: 300 });
  const ports = new PortTable(16);
  ports.add(0, 'vsw1', 1, 10);
  ports.add(1, 'vswaaaa0001', 1, 10);
  ports.add(2, 'vswbbbb0001', 2, 20);
  ports.add(3, 'trunk0', NO_NET, { untagged: NO_NET, pvid: 0, tagged: [{ vid: 10, net: 1 }, { vid: 20, net: 2 }] });
  const names: TraceNames = {
    port: (id) => ['vsw1 (host)', 'vswaaaa0001 (c10)', 'vswbbbb0001 (c20)', 'trunk0 (trunk)'][id] ?? `#${id}`,
    network: (id) => ['bridge', 'v10', 'v20'][id] ?? `#${id}`,
  };
  return { fdb, names, tables: { fdb, ports, now: 1000 } };
}

const ECHO = icmpEcho({ srcMac: '02:42:0a:0a:00:02', dstMac: '02:42:0a:0a:00:09', srcIp: '10.10.0.2', dstIp: '10.10.0.9', id: 7, seq: 1 });

describe('golden VLAN traces', () => {
  it('wrong VLAN: a VID the trunk does not carry ends at ingress, saying what it carries', () => {
    const s = setup();
    const r = traceDryRun(tagged(ECHO, 30), 3, s.tables, s.names);
    expect(formatTrace(r)).toBe([
      'frame   02:42:0a:0a:00:02 > 02:42:0a:0a:00:09, vlan 30 pcp 0, IPv4 10.10.0.2 > 10.10.0.9 ICMP echo request id 7 seq 1',
      'parse    ok: 02:42:0a:0a:00:02 > 02:42:0a:0a:00:09, ethertype 0x8100, 46 bytes',
      'ingress  drop: vlan-not-member (vid 30; port carries tagged 10,20)',
      '',
    ].join('\n'));
    expect(r.verdict).toEqual({ kind: 'drop', ports: [], reason: 'vlan-not-member' });
  });

  it('a tagged broadcast on the trunk: into its VLAN, tag removed, flooded untagged to that VLAN only', () => {
    const s = setup();
    const arp = arpRequest({ srcMac: '02:42:0a:0a:00:05', srcIp: '10.10.0.5', targetIp: '10.10.0.2' });
    const r = traceDryRun(tagged(arp, 10, 5), 3, s.tables, s.names);
    expect(formatTrace(r)).toBe([
      'frame   02:42:0a:0a:00:05 > ff:ff:ff:ff:ff:ff, vlan 10 pcp 5, ARP request who-has 10.10.0.2 tell 10.10.0.5',
      'parse    ok: 02:42:0a:0a:00:05 > ff:ff:ff:ff:ff:ff, ethertype 0x8100, 46 bytes',
      'ingress  port trunk0 (trunk): tagged vid 10 (pcp 5) -> network v10, vlan 10 (tag removed)',
      'learn    (dry run, not learned) new: 02:42:0a:0a:00:05 on trunk0 (trunk)',
      'gateway  pass (not for the gateway)',
      'forward  flood (broadcast) to 2 port(s): vsw1 (host), vswaaaa0001 (c10)',
      '',
    ].join('\n'));
  });

  it('from an access port: the trunk gets it tagged (with the PCP of a priority tag)', () => {
    const s = setup();
    const r = traceDryRun(tagged(ECHO, 0, 6), 1, s.tables, s.names);
    expect(r.steps.map((x) => `${x.stage}: ${x.text}`)).toEqual([
      'parse: ok: 02:42:0a:0a:00:02 > 02:42:0a:0a:00:09, ethertype 0x8100, 46 bytes',
      'ingress: port vswaaaa0001 (c10): priority-tagged (vid 0, pcp 6) -> network v10, vlan 10 (tag removed)',
      'learn: (dry run, not learned) new: 02:42:0a:0a:00:02 on vswaaaa0001 (c10)',
      'gateway: pass (not for the gateway)',
      'forward: flood (unknown unicast 02:42:0a:0a:00:09) to 2 port(s): vsw1 (host), trunk0 (trunk) [tagged vid 10 pcp 6]',
    ]);
    s.fdb.learn(1, 10, 0x0242, 0x0a0a0009, 3, 999);
    const k = traceDryRun(ECHO, 1, s.tables, s.names);
    expect(k.steps.at(-1)!.text).toBe('known unicast 02:42:0a:0a:00:09 -> trunk0 (trunk) [tagged vid 10]');
    expect(k.steps[1].text).toBe('port vswaaaa0001 (c10): network v10, vlan 10');
  });

  it('the other VLAN drops: tagged on an access port, untagged on a trunk, QinQ, runt after untag', () => {
    const s = setup();
    const last = (f: Uint8Array, port: number): string => traceDryRun(f, port, s.tables, s.names).steps.at(-1)!.text;
    expect(last(tagged(ECHO, 10), 1)).toBe('drop: tagged-on-access (vid 10; port carries untagged vlan 10)');
    expect(last(ECHO, 3)).toBe('drop: untagged-on-trunk (untagged; port carries tagged 10,20)');
    expect(last(tagged(ECHO, 10, 0, 0, 0x88a8), 3)).toBe('drop: qinq (802.1ad outer tag 0x88a8)');
    expect(last(tagged(tagged(ECHO, 20), 10), 3)).toBe('drop: qinq (vid 10 over another tag 0x8100)');
    expect(last(tagged(ECHO, 10).subarray(0, 16), 3)).toBe('drop: runt-after-untag (16 bytes with the tag)');
  });
});
