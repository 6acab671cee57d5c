// vsw events, the naming side: MAC table and connection events from the dataplane become
// named, self-describing events; the conntrack hook's records survive the ring.
import { describe, expect, it } from 'vitest';
import { EventBus, emitConntrack, formatEvent, type VswEvent } from '../../control/events';
import { CaptureRing, captureRingBytes } from '../../workers/capture-ring';
import { CT_EVENT_BASE, ctEventWriter, decodeCtEvent } from '../../workers/events';
import { Conntrack, CT_EV_EXPIRED, CT_EV_NEW, CT_KIND_MASQ } from '../../dataplane/tables/conntrack';
import { parseIp } from '../../dataplane/wire/ip';

const ip = (t: string): number => parseIp(t) >>> 0;

describe('connection events', () => {
  it('the hook records new and expired connections; the bus names them with their tuples', () => {
    const ring = new CaptureRing(new SharedArrayBuffer(captureRingBytes(1 << 14)));
    const ct = new Conntrack({ maxEntries: 16, maxPerSource: 16, portMin: 1024, portMax: 65535 });
    ct.hook = ctEventWriter(ring, ct);
    const h = ct.create(6, ip('10.89.0.2'), ip('198.51.100.1'), 40000, 80, ip('198.51.100.1'), ip('198.51.100.2'), 80, 40000,
      true, 3, -1, CT_KIND_MASQ, 100);
    expect(h).toBeGreaterThanOrEqual(0);
    ct.seen(h, 0x02, 60, 100);
    ct.expire(100 + 121);
    const recs = ring.drain();
    expect(recs.map((r) => r.dir)).toEqual([CT_EVENT_BASE + CT_EV_NEW, CT_EVENT_BASE + CT_EV_EXPIRED]);
    const evs = recs.map(decodeCtEvent);
    expect(evs[0]).toMatchObject({ kind: CT_EV_NEW, proto: 6, ctKind: CT_KIND_MASQ, net: 3 });
    expect(evs[0].orig).toEqual({ src: ip('10.89.0.2'), dst: ip('198.51.100.1'), sport: 40000, dport: 80 });

    const bus = new EventBus();
    const got: VswEvent[] = [];
    bus.subscribe((e) => got.push(e));
    emitConntrack(bus, evs, (id) => (id === 3 ? 'bridge' : `#${id}`));
    expect(got.map((e) => e.type)).toEqual(['conntrack-new', 'conntrack-expired']);
    expect(got[0]).toMatchObject({
      proto: 'tcp', kind: 'masquerade', network: 'bridge',
      orig: '10.89.0.2:40000 > 198.51.100.1:80', reply: '198.51.100.1:80 > 198.51.100.2:40000',
    });
    expect(formatEvent(got[0])).toMatch(/ conntrack-new proto=tcp kind=masquerade network=bridge orig=10\.89\.0\.2:40000 > 198\.51\.100\.1:80 /);
  });
});
