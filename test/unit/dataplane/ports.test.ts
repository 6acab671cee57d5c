// The port table with 802.1Q trunks: membership, flood lists with their VIDs, egress forms.
import { describe, it, expect } from 'vitest';
import { NO_NET, PortTable } from '../../../dataplane/tables/ports';

/** Networks: 0 = bridge (untagged), 1 = v10, 2 = v20, 3 = v30. */
function setup() {
  const t = new PortTable(16);
  t.add(0, 'vsw0', 0);              // host TAP of bridge (untagged network)
  t.add(1, 'c1', 0);                // a container on bridge
  t.add(2, 'vsw1', 1, 10);          // host TAP of v10
  t.add(3, 'a10', 1, 10);           // container on v10
  t.add(4, 'a20', 2, 20);           // container on v20
  t.add(5, 'trunk0', NO_NET, { untagged: NO_NET, pvid: 0, tagged: [{ vid: 10, net: 1 }, { vid: 20, net: 2 }] });
  return t;
}

describe('PortTable', () => {
  it('access ports: one network untagged, with its VLAN id; no trunk maps', () => {
    const t = setup();
    expect([t.netOf[3], t.pvid[3], t.isTrunk(3)]).toEqual([1, 10, false]);
    expect(t.vidNet[3]).toBeUndefined();
    expect(t.egressVid(3, 1)).toBe(0);
    expect(t.egressVid(3, 2)).toBe(-1);
    expect(t.vlanOfNet[1]).toBe(10);
    expect(t.vlanOfNet[0]).toBe(0);
  });

  it('a trunk is a member of every network it carries, tagged', () => {
    const t = setup();
    expect(Array.from(t.portsOf(1))).toEqual([2, 3, 5]);
    expect(Array.from(t.tagsOf(1)!)).toEqual([0, 0, 10]);
    expect(Array.from(t.portsOf(2))).toEqual([4, 5]);
    expect(Array.from(t.tagsOf(2)!)).toEqual([0, 20]);
    expect(t.egressVid(5, 1)).toBe(10);
    expect(t.egressVid(5, 2)).toBe(20);
    expect(t.egressVid(5, 0)).toBe(-1);
    expect(t.vidNet[5]![10]).toBe(1);
    expect(t.vidNet[5]![30]).toBe(NO_NET);
    expect(t.netOf[5]).toBe(NO_NET);
  });

  it('untagged networks keep the fast path: tagsOf is null', () => {
    const t = setup();
    expect(Array.from(t.portsOf(0))).toEqual([0, 1]);
    expect(t.tagsOf(0)).toBeNull();
    expect(t.tagsOf(7)).toBeNull();
    expect(t.portsOf(7).length).toBe(0);
  });

  it('a native VLAN is carried untagged, and accepted tagged too', () => {
    const t = setup();
    t.setVlans(5, { untagged: 3, pvid: 30, tagged: [{ vid: 10, net: 1 }] });
    expect(t.egressVid(5, 3)).toBe(0);
    expect(t.egressVid(5, 1)).toBe(10);
    expect(t.egressVid(5, 2)).toBe(-1);          // v20 no longer carried
    expect(t.vidNet[5]![30]).toBe(3);           // tagged 30 accepted into the native VLAN
    expect(Array.from(t.portsOf(2))).toEqual([4]);
    expect(t.tagsOf(2)).toBeNull();             // v20 is back to the fast path
    expect(Array.from(t.portsOf(3))).toEqual([5]);
    expect(t.tagsOf(3)).toBeNull();             // native: untagged member
    expect(t.vlansOf(5)).toEqual({ untagged: 3, pvid: 30, tagged: [{ vid: 10, net: 1 }] });
  });

  it('removing a trunk takes it out of every flood list', () => {
    const t = setup();
    t.remove(5);
    expect(Array.from(t.portsOf(1))).toEqual([2, 3]);
    expect(t.tagsOf(1)).toBeNull();
    expect(t.egressVid(5, 1)).toBe(-1);
    expect(t.has(5)).toBe(false);
    expect(t.list().map((e) => e.id)).toEqual([0, 1, 2, 3, 4]);
  });

  it('re-adding a port replaces its membership', () => {
    const t = setup();
    t.add(3, 'a10', 2, 20);
    expect(Array.from(t.portsOf(1))).toEqual([2, 5]);
    expect(Array.from(t.portsOf(2))).toEqual([3, 4, 5]);
  });

  it('refuses bad memberships', () => {
    const t = setup();
    expect(() => t.setVlans(5, { untagged: NO_NET, pvid: 0, tagged: [{ vid: 0, net: 1 }] })).toThrow(/VLAN id 0/);
    expect(() => t.setVlans(5, { untagged: NO_NET, pvid: 0, tagged: [{ vid: 4095, net: 1 }] })).toThrow(/4095/);
    expect(() => t.setVlans(5, { untagged: NO_NET, pvid: 0, tagged: [{ vid: 10, net: 1 }, { vid: 10, net: 2 }] })).toThrow(/twice/);
    expect(() => t.setVlans(5, { untagged: 1, pvid: 10, tagged: [{ vid: 10, net: 2 }] })).toThrow(/both/);
    expect(() => t.setVlans(5, { untagged: 1, pvid: 10, tagged: [{ vid: 11, net: 1 }] })).toThrow(/both/);
    expect(() => t.setVlans(9, { untagged: 1, pvid: 10, tagged: [] })).toThrow(/no port/);
    expect(() => t.add(16, 'x', 0)).toThrow(RangeError);
    // Nothing changed.
    expect(Array.from(t.portsOf(1))).toEqual([2, 3, 5]);
  });

  it('list() gives every port with what it carries', () => {
    const t = setup();
    expect(t.list().find((e) => e.id === 5)).toEqual({
      id: 5, name: 'trunk0', netId: NO_NET,
      vlans: { untagged: NO_NET, pvid: 0, tagged: [{ vid: 10, net: 1 }, { vid: 20, net: 2 }] },
    });
  });
});
