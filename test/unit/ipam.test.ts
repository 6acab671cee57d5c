import { describe, expect, it } from 'vitest';
import { ConflictError, ExhaustedError, InvalidArgumentError } from '../../control/errors';
import {
  allocateIp,
  broadcast,
  cidrContains,
  cidrInside,
  cidrOverlaps,
  defaultSubnetCandidates,
  firstUsable,
  formatIp,
  hostPortIp,
  isValidName,
  lastUsable,
  macFromIp,
  normalizeNetwork,
  parseCidr,
  parseIp,
  size,
  validName,
} from '../../control/ipam';

const noCtx = { existingSubnets: [], usedPrefixes: [] };

describe('parseIp / formatIp', () => {
  it('round-trips', () => {
    for (const s of ['0.0.0.0', '10.89.0.1', '172.17.0.2', '255.255.255.255']) {
      expect(formatIp(parseIp(s))).toBe(s);
    }
    expect(parseIp('255.255.255.255')).toBe(0xffffffff);
    expect(parseIp('10.0.0.1')).toBe(0x0a000001);
  });

  it.each(['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.-1', ' 1.2.3.4', '1.2.3.4/24', 'a.b.c.d', '1..2.3'])(
    'rejects %j',
    (s) => {
      expect(() => parseIp(s)).toThrow(InvalidArgumentError);
      expect(() => parseIp(s)).toThrow(`invalid IPv4 address '${s}'`);
    },
  );
});

describe('parseCidr', () => {
  it('parses a network', () => {
    expect(parseCidr('10.89.0.0/24')).toEqual({ base: parseIp('10.89.0.0'), prefixLen: 24, text: '10.89.0.0/24' });
  });

  it('names the right network when host bits are set', () => {
    expect(() => parseCidr('10.1.2.3/16')).toThrow('subnet 10.1.2.3/16 has host bits set; use 10.1.0.0/16');
    expect(() => parseCidr('10.1.2.3/16')).toThrow(InvalidArgumentError);
  });

  it.each(['10.0.0.0', '10.0.0.0/', '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/0', '10.0.0.0/24/1', '10.0.0/8', '10.0.0.0/ 8', '10.0.0.0/08x'])(
    'rejects %j',
    (s) => {
      expect(() => parseCidr(s)).toThrow(InvalidArgumentError);
    },
  );

  it('refuses /31 and /32 networks with a reason, but allows them for ranges', () => {
    expect(() => parseCidr('10.0.0.0/31')).toThrow(/at most 30.*gateway/);
    expect(() => parseCidr('10.0.0.1/32')).toThrow(InvalidArgumentError);
    expect(parseCidr('10.0.0.1/32', 32).text).toBe('10.0.0.1/32');
  });
});

describe('cidr helpers', () => {
  it('contains / overlaps / inside', () => {
    expect(cidrContains('10.89.0.0/24', '10.89.0.255')).toBe(true);
    expect(cidrContains('10.89.0.0/24', '10.89.1.0')).toBe(false);
    expect(cidrOverlaps('10.0.0.0/8', '10.89.3.0/24')).toBe(true);
    expect(cidrOverlaps('10.89.3.0/24', '10.0.0.0/8')).toBe(true);
    expect(cidrOverlaps('10.89.0.0/24', '10.89.1.0/24')).toBe(false);
    expect(cidrOverlaps('10.89.0.0/23', '10.89.1.0/24')).toBe(true);
    expect(cidrInside('10.89.0.128/25', '10.89.0.0/24')).toBe(true);
    expect(cidrInside('10.89.0.0/23', '10.89.0.0/24')).toBe(false);
  });

  it('first/last usable, broadcast, size, host port', () => {
    expect(firstUsable('10.89.0.0/24')).toBe('10.89.0.1');
    expect(lastUsable('10.89.0.0/24')).toBe('10.89.0.254');
    expect(broadcast('10.89.0.0/24')).toBe('10.89.0.255');
    expect(hostPortIp('10.89.0.0/24')).toBe('10.89.0.254');
    expect(size('10.89.0.0/24')).toBe(256);
    expect(size('0.0.0.0/1')).toBe(2 ** 31);
    expect(broadcast('128.0.0.0/1')).toBe('255.255.255.255');
  });
});

describe('names', () => {
  it('accepts and rejects', () => {
    expect(validName('web-1.a_b')).toBe('web-1.a_b');
    expect(validName('a'.repeat(63))).toHaveLength(63);
    expect(isValidName('a'.repeat(64))).toBe(false);
    for (const bad of ['', '-x', '.x', '_x', 'a/b', 'a b', 'ä', 'a'.repeat(64)]) {
      expect(() => validName(bad)).toThrow(InvalidArgumentError);
    }
    expect(() => validName('a/b', 'network name')).toThrow("invalid network name 'a/b'");
  });
});

describe('normalizeNetwork', () => {
  it('fills in defaults from the pool', () => {
    expect(normalizeNetwork({ name: 'n1' }, noCtx)).toEqual({
      subnet: '10.89.0.0/24',
      gateway: '10.89.0.1',
      ipRange: '10.89.0.0/24',
      mtu: 1500,
    });
    expect(defaultSubnetCandidates()[0]).toBe('10.89.0.0/24');
    expect(defaultSubnetCandidates()[1]).toBe('10.89.1.0/24');
  });

  it('default subnet skips existing networks and used prefixes', () => {
    const r = normalizeNetwork(
      { name: 'n3' },
      {
        existingSubnets: [{ name: 'n1', subnet: '10.89.0.0/24' }],
        usedPrefixes: ['10.89.1.0/24', '10.89.2.7/32', '127.0.0.0/8', '172.17.0.0/16'],
      },
    );
    expect(r.subnet).toBe('10.89.3.0/24');
    // A wide route covering the pool's start pushes it further.
    expect(normalizeNetwork({ name: 'n4' }, { existingSubnets: [], usedPrefixes: ['10.89.0.0/22'] }).subnet).toBe(
      '10.89.4.0/24',
    );
    // Plain addresses count as /32.
    expect(normalizeNetwork({ name: 'n5' }, { existingSubnets: [], usedPrefixes: ['10.89.0.9'] }).subnet).toBe(
      '10.89.1.0/24',
    );
    // Prefixes shorter than /8 (VPN "def1" routes) are default routes in disguise: ignored.
    expect(
      normalizeNetwork({ name: 'n6' }, { existingSubnets: [], usedPrefixes: ['0.0.0.0/1', '128.0.0.0/1'] }).subnet,
    ).toBe('10.89.0.0/24');
  });

  it('ExhaustedError when the whole pool is used', () => {
    expect(() => normalizeNetwork({ name: 'n' }, { existingSubnets: [], usedPrefixes: ['10.0.0.0/8'] })).toThrow(
      ExhaustedError,
    );
  });

  it('an explicit subnet overlapping another network is a conflict naming it', () => {
    const ctx = { existingSubnets: [{ name: 'blue', subnet: '10.20.0.0/16' }], usedPrefixes: [] };
    expect(() => normalizeNetwork({ name: 'red', subnet: '10.20.5.0/24' }, ctx)).toThrow(ConflictError);
    expect(() => normalizeNetwork({ name: 'red', subnet: '10.20.5.0/24' }, ctx)).toThrow(/network 'blue'/);
    expect(normalizeNetwork({ name: 'red', subnet: '10.21.0.0/16' }, ctx).subnet).toBe('10.21.0.0/16');
    expect(() => normalizeNetwork({ name: 'blue', subnet: '10.22.0.0/16' }, ctx)).toThrow("network 'blue' already exists");
  });

  it('an explicit subnet is allowed over a used prefix (the user asked for it)', () => {
    expect(
      normalizeNetwork({ name: 'x', subnet: '192.168.7.0/24' }, { existingSubnets: [], usedPrefixes: ['192.168.7.0/24'] })
        .subnet,
    ).toBe('192.168.7.0/24');
  });

  it('validates the subnet', () => {
    expect(() => normalizeNetwork({ name: 'x', subnet: '10.1.2.3/16' }, noCtx)).toThrow('use 10.1.0.0/16');
    expect(() => normalizeNetwork({ name: 'x', subnet: '10.1.2.0/30' }, noCtx)).toThrow(/too small.*\/29/);
    expect(normalizeNetwork({ name: 'x', subnet: '10.1.2.0/29' }, noCtx)).toMatchObject({ gateway: '10.1.2.1' });
    expect(() => normalizeNetwork({ name: 'bad name', subnet: '10.1.2.0/24' }, noCtx)).toThrow(InvalidArgumentError);
  });

  it('validates the gateway', () => {
    const s = { name: 'x', subnet: '10.1.2.0/24' };
    expect(normalizeNetwork({ ...s, gateway: '10.1.2.200' }, noCtx).gateway).toBe('10.1.2.200');
    expect(() => normalizeNetwork({ ...s, gateway: '10.1.3.1' }, noCtx)).toThrow('gateway 10.1.3.1 is not inside subnet 10.1.2.0/24');
    expect(() => normalizeNetwork({ ...s, gateway: '10.1.2.0' }, noCtx)).toThrow(/network address/);
    expect(() => normalizeNetwork({ ...s, gateway: '10.1.2.255' }, noCtx)).toThrow(/broadcast address/);
    expect(() => normalizeNetwork({ ...s, gateway: '10.1.2' }, noCtx)).toThrow("invalid IPv4 address '10.1.2'");
    expect(() => normalizeNetwork({ name: 'x', gateway: '10.1.2.1' }, noCtx)).toThrow(/requires a subnet/);
  });

  it('validates the ip range', () => {
    const s = { name: 'x', subnet: '10.1.0.0/16' };
    expect(normalizeNetwork({ ...s, ipRange: '10.1.5.0/24' }, noCtx).ipRange).toBe('10.1.5.0/24');
    expect(() => normalizeNetwork({ ...s, ipRange: '10.2.5.0/24' }, noCtx)).toThrow('ip range 10.2.5.0/24 is not inside subnet 10.1.0.0/16');
    expect(() => normalizeNetwork({ ...s, ipRange: '10.0.0.0/8' }, noCtx)).toThrow(/not inside/);
    expect(() => normalizeNetwork({ ...s, ipRange: '10.1.5.1/24' }, noCtx)).toThrow('ip range 10.1.5.1/24 has host bits set; use 10.1.5.0/24');
    // A range holding only reserved addresses is useless.
    expect(() => normalizeNetwork({ ...s, ipRange: '10.1.0.0/31' }, noCtx)).toThrow(/leaves no address/);
    expect(normalizeNetwork({ ...s, ipRange: '10.1.0.7/32' }, noCtx).ipRange).toBe('10.1.0.7/32');
  });

  it('validates the mtu', () => {
    expect(normalizeNetwork({ name: 'x', mtu: 9000 }, noCtx).mtu).toBe(9000);
    for (const m of [67, 65536, 1500.5, 0]) {
      expect(() => normalizeNetwork({ name: 'x', mtu: m }, noCtx)).toThrow(/invalid mtu/);
    }
  });
});

describe('allocateIp', () => {
  const net = { subnet: '10.89.0.0/24', gateway: '10.89.0.1', ipRange: '10.89.0.0/24' };

  it('hands out the lowest free address, skipping reserved and used ones', () => {
    const used = new Map<string, string>();
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      const ip = allocateIp(net, used);
      used.set(ip, `c${i}`);
      got.push(ip);
    }
    expect(got).toEqual(['10.89.0.2', '10.89.0.3', '10.89.0.4']);
    used.delete('10.89.0.3');
    expect(allocateIp(net, used)).toBe('10.89.0.3');
    // A Set works too.
    expect(allocateIp(net, new Set(['10.89.0.2']))).toBe('10.89.0.3');
  });

  it('skips a gateway in the middle and honours the ip range', () => {
    expect(allocateIp({ subnet: '10.1.0.0/16', gateway: '10.1.5.0', ipRange: '10.1.5.0/24' }, new Map())).toBe('10.1.5.1');
    expect(allocateIp({ subnet: '10.1.0.0/16', gateway: '10.1.0.1', ipRange: '10.1.5.0/24' }, new Map())).toBe('10.1.5.0');
    expect(allocateIp({ subnet: '10.1.0.0/24', gateway: '10.1.0.1' }, new Map())).toBe('10.1.0.2');
  });

  it('requested addresses: inside the subnet, free, not reserved', () => {
    const used = new Map([['10.89.0.5', 'c1']]);
    expect(allocateIp(net, used, '10.89.0.9')).toBe('10.89.0.9');
    expect(() => allocateIp(net, used, '10.89.0.5')).toThrow(ConflictError);
    expect(() => allocateIp(net, used, '10.89.0.5')).toThrow('address 10.89.0.5 is already in use by c1');
    expect(() => allocateIp(net, used, '10.89.1.5')).toThrow('address 10.89.1.5 is not inside subnet 10.89.0.0/24');
    expect(() => allocateIp(net, used, '10.89.0.1')).toThrow(/gateway/);
    expect(() => allocateIp(net, used, '10.89.0.1')).toThrow(ConflictError);
    expect(() => allocateIp(net, used, '10.89.0.254')).toThrow(/host port/);
    expect(() => allocateIp(net, used, '10.89.0.0')).toThrow(InvalidArgumentError);
    expect(() => allocateIp(net, used, '10.89.0.255')).toThrow(/broadcast/);
    expect(() => allocateIp(net, used, 'nope')).toThrow("invalid IPv4 address 'nope'");
    // Like Docker, a requested address only has to be inside the subnet, not the ip range.
    const ranged = { subnet: '10.1.0.0/16', gateway: '10.1.0.1', ipRange: '10.1.5.0/24' };
    expect(allocateIp(ranged, new Map(), '10.1.9.9')).toBe('10.1.9.9');
  });

  it('a /30 holds no container: gateway .1 and host port .2 take both usable addresses', () => {
    const tiny = { subnet: '10.9.9.0/30', gateway: '10.9.9.1' };
    expect(hostPortIp(tiny.subnet)).toBe('10.9.9.2');
    expect(() => allocateIp(tiny, new Map())).toThrow(ExhaustedError);
    expect(() => allocateIp(tiny, new Map())).toThrow('no free address left in subnet 10.9.9.0/30');
  });

  it('a /29 (the smallest useful network) holds 4 containers, then is exhausted', () => {
    const n = { subnet: '10.9.9.0/29', gateway: '10.9.9.1' };
    const used = new Map<string, string>();
    for (let i = 0; i < 4; i++) used.set(allocateIp(n, used), `c${i}`);
    expect([...used.keys()]).toEqual(['10.9.9.2', '10.9.9.3', '10.9.9.4', '10.9.9.5']);
    expect(() => allocateIp(n, used)).toThrow(ExhaustedError);
  });
});

describe('macFromIp', () => {
  it("follows Docker's rule", () => {
    expect(macFromIp('172.17.0.2')).toBe('02:42:ac:11:00:02');
    expect(macFromIp('10.89.0.254')).toBe('02:42:0a:59:00:fe');
    expect(macFromIp(parseIp('255.255.255.255'))).toBe('02:42:ff:ff:ff:ff');
  });
});

describe('normalizeNetwork refuses subnets containers cannot use', () => {
  const ctx = { existingSubnets: [], usedPrefixes: [] };
  it.each([
    ['127.0.0.0/24', 'loopback'],
    ['224.1.0.0/24', 'multicast'],
    ['0.0.0.0/24', 'this network'],
    ['240.0.0.0/24', 'reserved'],
    ['126.0.0.0/7', 'loopback'],
    ['169.254.0.0/16', 'link-local'],
    ['169.254.7.0/24', 'link-local'],
    ['168.0.0.0/6', 'link-local'],
    ['225.0.0.0/8', 'multicast'],
    ['239.255.255.0/24', 'multicast'],
    ['255.255.255.0/29', 'reserved'],
  ])('%s (%s)', (subnet, why) => {
    expect(() => normalizeNetwork({ name: 'n', subnet }, ctx)).toThrow(new RegExp(`${subnet.replace(/\./g, '\\.')}.*${why}`));
  });
  it('accepts the unicast neighbours of those ranges', () => {
    for (const subnet of ['169.253.0.0/16', '169.255.0.0/16', '223.255.255.0/24', '1.0.0.0/24', '128.0.0.0/24']) {
      expect(normalizeNetwork({ name: 'n', subnet }, ctx).subnet).toBe(subnet);
    }
  });
  it('refuses a gateway on the host port address (the last usable one)', () => {
    expect(() => normalizeNetwork({ name: 'n', subnet: '10.93.0.0/24', gateway: '10.93.0.254' }, ctx)).toThrow(/host port/);
    expect(normalizeNetwork({ name: 'n', subnet: '10.93.0.0/24', gateway: '10.93.0.253' }, ctx).gateway).toBe('10.93.0.253');
  });
});
