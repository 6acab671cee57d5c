// The values of -p/--publish, --alias and --link (control/publish.ts), and the tables of
// the L3 commands (control/format.ts): pure functions.

import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../control/errors';
import {
  conntrackTable, containersTable, neighTable, networkFlags, networksTable, tupleText,
} from '../../control/format';
import {
  checkAlias, checkAliasesJson, checkLinksJson, checkPublishJson, formatPortLine, formatPublish, parseLink,
  parsePublish, portsText, publishClash, publishConflict,
} from '../../control/publish';
import type { ConntrackEntryInfo, ContainerInfo, NetworkInfo, PortMapping } from '../../control/types';

function error(f: () => unknown): InvalidArgumentError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidArgumentError);
    return e as InvalidArgumentError;
  }
  throw new Error('expected an InvalidArgumentError');
}

const pm = (hostIp: string, hostPort: number, containerPort: number, proto: 'tcp' | 'udp' = 'tcp'): PortMapping =>
  ({ hostIp, hostPort, containerPort, proto });

describe('parsePublish (-p [IP:]HOSTPORT:PORT[/tcp|udp])', () => {
  it('accepts the documented forms, with IP 0.0.0.0 and tcp by default', () => {
    expect(parsePublish('8080:80')).toEqual(pm('0.0.0.0', 8080, 80));
    expect(parsePublish('8080:80/tcp')).toEqual(pm('0.0.0.0', 8080, 80));
    expect(parsePublish('5353:53/udp')).toEqual(pm('0.0.0.0', 5353, 53, 'udp'));
    expect(parsePublish('5353:53/UDP')).toEqual(pm('0.0.0.0', 5353, 53, 'udp'));
    expect(parsePublish('10.89.0.1:8080:80')).toEqual(pm('10.89.0.1', 8080, 80));
    expect(parsePublish('198.51.100.2:443:8443/tcp')).toEqual(pm('198.51.100.2', 443, 8443));
    expect(parsePublish('0.0.0.0:1:65535/udp')).toEqual(pm('0.0.0.0', 1, 65535, 'udp'));
  });

  it('refuses anything else, saying why and the accepted form', () => {
    const cases: Array<[string, RegExp]> = [
      ['', /it is empty/],
      ['80', /the host port is missing \(random host ports are not supported\)/],
      ['80/tcp', /the host port is missing/],
      ['8000-8010:80', /port ranges are not supported/],
      ['8080:80-81', /port ranges are not supported/],
      ['8080-:80', /port ranges are not supported/],
      ['::1:80:80', /IPv6 addresses are not supported/],
      ['[::1]:80:80', /IPv6 addresses are not supported/],
      ['fe80::1:8080:80', /IPv6 addresses are not supported/],
      ['80:80/sctp', /the protocol 'sctp' is not tcp or udp/],
      ['80:80/', /the protocol is missing/],
      ['0:80', /the host port 0 is not from 1 to 65535/],
      ['80:65536', /the container port 65536 is not from 1 to 65535/],
      ['80:123456', /the container port 123456 is not from 1 to 65535/],
      ['http:80', /the host port 'http' is not a number/],
      ['+80:80', /the host port '\+80' is not a number/],
      ['8080:', /the container port is missing/],
      [':8080:80', /the IP address is empty/],
      ['1.2.3:8080:80', /'1\.2\.3' is not an IPv4 address/],
      ['256.1.1.1:8080:80', /'256\.1\.1\.1' is not an IPv4 address/],
      ['localhost:8080:80', /'localhost' is not an IPv4 address/],
      ['127.0.0.1:8080:80', /127\.0\.0\.1 is a loopback address: ports are published on the switch's addresses \(the uplink's, a gateway's\), or 0\.0\.0\.0 for all/],
      ['224.0.0.1:8080:80', /224\.0\.0\.1 is not a unicast address/],
      ['255.255.255.255:8080:80', /is not a unicast address/],
      ['0.0.0.1:8080:80', /0\.0\.0\.1 is not a unicast address/],
    ];
    for (const [text, re] of cases) {
      const e = error(() => parsePublish(text));
      expect([text, e.message]).toEqual([text, expect.stringMatching(re)]);
      expect(e.message).toContain(`invalid port mapping '${text}': `);
      expect(e.message).toContain('(expected [IP:]HOSTPORT:PORT[/tcp|udp], e.g. 8080:80 or 10.89.0.1:5353:53/udp)');
    }
  });

  it('clashes: same protocol and host port on the same address or 0.0.0.0', () => {
    expect(publishClash(pm('0.0.0.0', 80, 1), pm('0.0.0.0', 80, 2))).toBe(true);
    expect(publishClash(pm('0.0.0.0', 80, 1), pm('10.0.0.1', 80, 2))).toBe(true);
    expect(publishClash(pm('10.0.0.2', 80, 1), pm('10.0.0.1', 80, 2))).toBe(false);
    expect(publishClash(pm('0.0.0.0', 80, 1), pm('0.0.0.0', 80, 1, 'udp'))).toBe(false);
    expect(publishClash(pm('0.0.0.0', 80, 1), pm('0.0.0.0', 81, 1))).toBe(false);
    expect(publishConflict([pm('0.0.0.0', 80, 80), pm('0.0.0.0', 53, 53, 'udp'), pm('10.89.0.1', 80, 81)]))
      .toBe('host port 80/tcp is published twice (0.0.0.0:80 and 10.89.0.1:80)');
    expect(publishConflict([pm('0.0.0.0', 80, 80), pm('0.0.0.0', 80, 80, 'udp')])).toBeUndefined();
    expect(publishConflict([])).toBeUndefined();
  });

  it('prints like Docker: ps (HOSTIP:HOSTPORT->PORT/PROTO) and port (PORT/PROTO -> ADDRESS:HOSTPORT)', () => {
    expect(formatPublish(pm('0.0.0.0', 8080, 80))).toBe('0.0.0.0:8080->80/tcp');
    expect(portsText({ ports: [pm('0.0.0.0', 8080, 80), pm('10.89.0.1', 5353, 53, 'udp')] }))
      .toBe('0.0.0.0:8080->80/tcp, 10.89.0.1:5353->53/udp');
    expect(portsText({ ports: [] })).toBe('');
    expect(formatPortLine(pm('0.0.0.0', 8080, 80))).toBe('80/tcp -> 0.0.0.0:8080');
    expect(formatPortLine(pm('0.0.0.0', 8080, 80), '198.51.100.2')).toBe('80/tcp -> 198.51.100.2:8080');
    expect(formatPortLine(pm('10.89.0.1', 5353, 53, 'udp'), '198.51.100.2')).toBe('53/udp -> 10.89.0.1:5353');
  });
});

describe('aliases and links', () => {
  it('checkAlias: dot-separated labels of letters, digits, - and _', () => {
    for (const ok of ['db', 'db-1', 'my_db', 'db.internal', 'a', '1', 'x'.repeat(63), `${'a'.repeat(63)}.${'b'.repeat(63)}`, '_srv']) {
      expect(checkAlias(ok)).toBe(ok);
    }
    for (const bad of ['', 'a b', 'a..b', '.a', 'a.', '-a', 'a-', 'x'.repeat(64), 'a/b', 'a:b', 'ü', `${'a.'.repeat(127)}a`]) {
      const e = error(() => checkAlias(bad));
      expect(e.message).toMatch(bad === '' ? /alias must not be empty/ : /^invalid alias '.*': use dot-separated labels of 1 to 63/);
    }
  });

  it('parseLink: NAME[:ALIAS]', () => {
    expect(parseLink('db')).toEqual({ name: 'db' });
    expect(parseLink('db:database')).toEqual({ name: 'db', alias: 'database' });
    expect(parseLink('my.db_1:x.y')).toEqual({ name: 'my.db_1', alias: 'x.y' });
    expect(error(() => parseLink('')).message).toMatch(/^invalid link '': '' is not a container name \(expected NAME\[:ALIAS\]/);
    expect(error(() => parseLink(':x')).message).toMatch(/is not a container name/);
    expect(error(() => parseLink('a/b')).message).toMatch(/'a\/b' is not a container name/);
    expect(error(() => parseLink('db:')).message).toMatch(/^link alias must not be empty$/);
    expect(error(() => parseLink('db:a b')).message).toMatch(/^invalid link alias 'a b': use dot-separated/);
  });
});

describe('the API JSON of publish, aliases, links', () => {
  it('publish: defaults filled in, fields checked and named', () => {
    expect(checkPublishJson([{ hostPort: 80, containerPort: 8080 }, { hostIp: '10.89.0.1', hostPort: 53, containerPort: 53, proto: 'udp' }]))
      .toEqual([pm('0.0.0.0', 80, 8080), pm('10.89.0.1', 53, 53, 'udp')]);
    expect(checkPublishJson([])).toEqual([]);
    const cases: Array<[unknown, RegExp]> = [
      ['80:80', /field 'publish' must be an array/],
      [[7], /field 'publish\[0\]' must be an object/],
      [[{ hostPort: 80 }], /field 'publish\[0\]\.containerPort' must be an integer from 1 to 65535/],
      [[{ hostPort: 0, containerPort: 80 }], /'publish\[0\]\.hostPort' must be an integer from 1 to 65535/],
      [[{ hostPort: 80.5, containerPort: 80 }], /'publish\[0\]\.hostPort'/],
      [[{ hostPort: '80', containerPort: 80 }], /'publish\[0\]\.hostPort'/],
      [[{ hostPort: 80, containerPort: 80, proto: 'sctp' }], /'publish\[0\]\.proto' must be 'tcp' or 'udp'/],
      [[{ hostPort: 80, containerPort: 80, hostIp: 'x' }], /'publish\[0\]\.hostIp': 'x' is not an IPv4 address/],
      [[{ hostPort: 80, containerPort: 80, hostIp: 5 }], /'publish\[0\]\.hostIp' must be a string/],
      [[{ hostPort: 80, containerPort: 80, hostIp: '127.0.0.1' }], /'publish\[0\]\.hostIp': 127\.0\.0\.1 is a loopback address/],
      [[{ hostPort: 80, containerPort: 80, extra: 1 }], /unknown field 'publish\[0\]\.extra'/],
      [[{ hostPort: 80, containerPort: 80 }, { hostPort: 80, containerPort: 81 }], /host port 80\/tcp is published twice/],
    ];
    for (const [v, re] of cases) expect(error(() => checkPublishJson(v)).message).toMatch(re);
  });

  it('aliases and links', () => {
    expect(checkAliasesJson(['a', 'b.c'])).toEqual(['a', 'b.c']);
    expect(error(() => checkAliasesJson('a')).message).toMatch(/'aliases' must be an array of strings/);
    expect(error(() => checkAliasesJson([1])).message).toMatch(/'aliases' must be an array of strings/);
    expect(error(() => checkAliasesJson(['a b'])).message).toMatch(/invalid alias 'a b'/);
    expect(checkLinksJson([{ name: 'db' }, { name: 'web', alias: 'www' }, { name: 'x', alias: null }]))
      .toEqual([{ name: 'db' }, { name: 'web', alias: 'www' }, { name: 'x' }]);
    expect(error(() => checkLinksJson({ name: 'db' })).message).toMatch(/'links' must be an array/);
    expect(error(() => checkLinksJson(['db'])).message).toMatch(/'links\[0\]' must be an object/);
    expect(error(() => checkLinksJson([{ name: 'a/b' }])).message).toMatch(/'links\[0\]\.name' must be a container name/);
    expect(error(() => checkLinksJson([{ name: 'db', alias: 3 }])).message).toMatch(/'links\[0\]\.alias' must be a string/);
    expect(error(() => checkLinksJson([{ name: 'db', alias: '-x' }])).message).toMatch(/invalid link alias '-x'/);
    expect(error(() => checkLinksJson([{ name: 'db', as: 'x' }])).message).toMatch(/unknown field 'links\[0\]\.as'/);
  });
});

describe('tables', () => {
  const net = (over: Partial<NetworkInfo>): NetworkInfo => ({
    name: 'n', id: 1, subnet: '10.1.0.0/24', gateway: '10.1.0.1', ipRange: '10.1.0.0/24', mtu: 1500, default: false,
    created: '', internal: false, icc: true, dnsOrder: 'rotate', gatewayMac: '02:56:0a:01:00:01', hostPort: null,
    ports: [], endpoints: [], ...over,
  });

  it('network ls FLAGS: the settings that are not the defaults', () => {
    expect(networkFlags(net({}))).toBe('');
    expect(networkFlags(net({ internal: true, icc: false, dnsOrder: 'random' }))).toBe('internal,no-icc,dns=random');
    expect(networkFlags(net({ portSecurity: false }))).toBe('port-security=off');
    expect(networkFlags(net({ portSecurity: true }))).toBe('');
    expect(networkFlags(net({ dnsOrder: 'fixed' }))).toBe('dns=fixed');
    const lines = networksTable([net({ name: 'a' }), net({ name: 'b', internal: true })]).trimEnd().split('\n');
    expect(lines[0].split(/\s{2,}/)).toEqual(['NAME', 'ID', 'SUBNET', 'GATEWAY', 'MTU', 'ENDPOINTS', 'DEFAULT', 'FLAGS']);
    expect(lines[1].split(/\s+/)).toEqual(['a', '1', '10.1.0.0/24', '10.1.0.1', '1500', '0', 'no', '-']);
    expect(lines[2].split(/\s+/)).toEqual(['b', '1', '10.1.0.0/24', '10.1.0.1', '1500', '0', 'no', 'internal']);
  });

  it('ps PORTS', () => {
    const c = (name: string, ports: PortMapping[]): ContainerInfo => ({
      name, id: 'abc', mode: 'none', netns: name, networks: [], cmd: ['sleep', '1'], detach: true, rm: false,
      status: 'running', created: '', ports, links: [],
    });
    const lines = containersTable([c('a', [pm('0.0.0.0', 8080, 80), pm('10.89.0.1', 53, 53, 'udp')]), c('b', [])]).trimEnd().split('\n');
    expect(lines[0].split(/\s{2,}/)).toEqual(['NAME', 'ID', 'NETWORK', 'IP', 'MAC', 'STATUS', 'PORTS', 'COMMAND']);
    expect(lines[1]).toMatch(/^a\s+abc\s+none\s+-\s+-\s+running\s+0\.0\.0\.0:8080->80\/tcp, 10\.89\.0\.1:53->53\/udp\s+sleep 1$/);
    expect(lines[2]).toMatch(/^b\s+abc\s+none\s+-\s+-\s+running\s+-\s+sleep 1$/);
    expect(lines[2].indexOf('sleep')).toBe(lines[0].indexOf('COMMAND'));
  });

  it('neigh: MAC "-" while incomplete, AGE in whole seconds', () => {
    const lines = neighTable([
      { network: 'bridge', ip: '10.89.0.2', mac: '02:42:0a:59:00:02', state: 'reachable', ageSeconds: 3.9 },
      { network: 'uplink', ip: '198.51.100.1', mac: '', state: 'incomplete', ageSeconds: 0 },
    ]).trimEnd().split('\n');
    expect(lines.map((l) => l.split(/\s+/))).toEqual([
      ['NETWORK', 'IP', 'MAC', 'STATE', 'AGE'],
      ['bridge', '10.89.0.2', '02:42:0a:59:00:02', 'reachable', '3'],
      ['uplink', '198.51.100.1', '-', 'incomplete', '0'],
    ]);
  });

  it('conntrack: both tuples, ICMP by identifier, EXPIRES and PKTS', () => {
    const tcp: ConntrackEntryInfo = {
      proto: 'tcp', state: 'ESTABLISHED', kind: 'masquerade', network: 'bridge', expiresInSeconds: 431999.6,
      orig: { src: '10.89.0.2', sport: 41000, dst: '93.184.216.34', dport: 80 },
      reply: { src: '93.184.216.34', sport: 80, dst: '198.51.100.2', dport: 61000 },
      packets: [5, 4], bytes: [400, 3000],
    };
    const icmp: ConntrackEntryInfo = {
      proto: 'icmp', state: 'REPLIED', kind: 'masquerade', network: 'bridge', expiresInSeconds: -1,
      orig: { src: '10.89.0.2', sport: 7, dst: '1.1.1.1', dport: 7 },
      reply: { src: '1.1.1.1', sport: 7, dst: '198.51.100.2', dport: 7 },
      packets: [1, 1], bytes: [84, 84],
    };
    expect(tupleText('tcp', tcp.orig)).toBe('10.89.0.2:41000 -> 93.184.216.34:80');
    expect(tupleText('icmp', icmp.orig)).toBe('10.89.0.2 -> 1.1.1.1 id=7');
    const lines = conntrackTable([tcp, icmp]).trimEnd().split('\n');
    expect(lines[0].split(/\s{2,}/)).toEqual(['PROTO', 'STATE', 'ORIG', 'REPLY', 'KIND', 'NETWORK', 'EXPIRES', 'PKTS']);
    expect(lines[1].split(/\s{2,}/)).toEqual([
      'tcp', 'ESTABLISHED', '10.89.0.2:41000 -> 93.184.216.34:80', '93.184.216.34:80 -> 198.51.100.2:61000',
      'masquerade', 'bridge', '431999', '5/4',
    ]);
    expect(lines[2].split(/\s{2,}/)).toEqual([
      'icmp', 'REPLIED', '10.89.0.2 -> 1.1.1.1 id=7', '1.1.1.1 -> 198.51.100.2 id=7', 'masquerade', 'bridge', '0', '1/1',
    ]);
    expect(lines[1].indexOf('masquerade')).toBe(lines[0].indexOf('KIND'));
  });
});
