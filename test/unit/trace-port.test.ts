import { describe, it, expect } from 'vitest';
import { parseHexFrame, portLabel, resolvePort, type PortFinder, type PortRef } from '../../control/trace';

const list: PortRef[] = [
  { id: 0, name: 'vsw0', network: 'bridge' },
  { id: 1, name: 'vswaaaa0001', network: 'bridge', container: 'web' },
  { id: 2, name: 'vswaaaa0002', network: 'netb', container: 'web' },
  { id: 3, name: 'vswbbbb0001', network: 'bridge', container: 'db' },
];
const ports: PortFinder = {
  byName: (name) => list.find((p) => p.name === name)?.id,
  endpoint: (container, network) => list.find((p) => p.container === container && p.network === network)?.id,
};
const first = (c: string): string | undefined => ({ web: 'bridge', db: 'bridge' } as Record<string, string>)[c];

describe('--port resolution', () => {
  it('takes a port name, a container (its first network), or CONTAINER:NETWORK', () => {
    expect(resolvePort('vswbbbb0001', ports, first)).toBe(3);
    expect(resolvePort('vsw0', ports, first)).toBe(0);
    expect(resolvePort('web', ports, first)).toBe(1);
    expect(resolvePort('web:netb', ports, first)).toBe(2);
  });
  it('says what is missing', () => {
    expect(() => resolvePort('nope', ports, first)).toThrow(/no port or container named 'nope'/);
    expect(() => resolvePort('db:netb', ports, first)).toThrow(/container 'db' has no port on network 'netb'/);
  });
});

describe('port labels (dry runs and live traces alike)', () => {
  it('names the container, the uplink or a trunk, else the host', () => {
    expect(list.map(portLabel)).toEqual(['vsw0 (host)', 'vswaaaa0001 (web)', 'vswaaaa0002 (web)', 'vswbbbb0001 (db)']);
    expect(portLabel({ id: 9, name: 'up0', network: 'uplink' })).toBe('up0 (uplink)');
    expect(portLabel({ id: 8, name: 'eth1', network: 'trunk' })).toBe('eth1 (trunk)');
  });
});

describe('--frame hex', () => {
  it('accepts hex with spaces, colons and 0x', () => {
    expect(Array.from(parseHexFrame('0x0a 0b:0C'))).toEqual([10, 11, 12]);
  });
  it('refuses odd lengths and non-hex', () => {
    for (const bad of ['', 'abc', 'zz', '0x']) expect(() => parseHexFrame(bad)).toThrow(/hex digits/);
  });
});
