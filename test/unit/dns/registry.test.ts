import { describe, expect, it } from 'vitest';
import { DnsRegistry } from '../../../dataplane/dns/registry';
import { prng } from './helpers';

function registry(order: 'rotate' | 'random' | 'fixed' = 'fixed'): DnsRegistry {
  const r = new DnsRegistry();
  r.setNetwork('front', order);
  r.setNetwork('back', order);
  r.addEndpoint('front', 'web', '10.1.0.2', ['www', 'site']);
  r.addEndpoint('front', 'db', '10.1.0.3', []);
  r.addEndpoint('back', 'db', '10.2.0.3', ['postgres']);
  return r;
}

describe('DnsRegistry: names', () => {
  it('answers the container name, aliases, NAME.NET and ALIAS.NET', () => {
    const r = registry();
    for (const n of ['web', 'www', 'site', 'web.front', 'www.front', 'site.front']) {
      expect(r.resolveA(n, ['front'])).toEqual(['10.1.0.2']);
    }
  });

  it('is case-insensitive and ignores one trailing dot', () => {
    const r = registry();
    expect(r.resolveA('WEB.Front.', ['front'])).toEqual(['10.1.0.2']);
    r.addEndpoint('front', 'Api', '10.1.0.9', ['API-v2']);
    expect(r.resolveA('api', ['front'])).toEqual(['10.1.0.9']);
    expect(r.resolveA('api-v2.FRONT', ['front'])).toEqual(['10.1.0.9']);
  });

  it('shows only the networks the client is attached to', () => {
    const r = registry();
    expect(r.resolveA('web', ['back'])).toBeNull();
    expect(r.resolveA('postgres', ['front'])).toBeNull();
    expect(r.resolveA('db', ['back'])).toEqual(['10.2.0.3']);
    expect(r.resolveA('db', ['front'])).toEqual(['10.1.0.3']);
    expect(r.resolveA('web', [])).toBeNull();
    expect(r.resolveA('web', ['nosuchnet'])).toBeNull();
  });

  it('answers the addresses of every client network holding the name', () => {
    const r = registry();
    expect(r.resolveA('db', ['front', 'back'])).toEqual(['10.1.0.3', '10.2.0.3']);
    expect(r.resolveA('db', ['back', 'front', 'back'])).toEqual(['10.1.0.3', '10.2.0.3']);
    // NAME.NET stays in its network
    expect(r.resolveA('db.back', ['front', 'back'])).toEqual(['10.2.0.3']);
  });

  it('a shared alias answers every container carrying it, in registration order', () => {
    const r = new DnsRegistry();
    r.setNetwork('n', 'fixed');
    r.addEndpoint('n', 'a', '10.0.0.2', ['svc']);
    r.addEndpoint('n', 'b', '10.0.0.3', ['svc']);
    r.addEndpoint('n', 'c', '10.0.0.4', ['SVC']);
    expect(r.resolveA('svc', ['n'])).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4']);
    expect(r.resolveA('svc.n', ['n'])).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4']);
  });

  it('re-adding replaces (new address and aliases) and keeps the registration place', () => {
    const r = new DnsRegistry();
    r.setNetwork('n', 'fixed');
    r.addEndpoint('n', 'a', '10.0.0.2', ['svc', 'old']);
    r.addEndpoint('n', 'b', '10.0.0.3', ['svc']);
    r.addEndpoint('n', 'a', '10.0.0.9', ['svc', 'new']);
    expect(r.resolveA('svc', ['n'])).toEqual(['10.0.0.9', '10.0.0.3']);
    expect(r.resolveA('old', ['n'])).toBeNull();
    expect(r.resolveA('new', ['n'])).toEqual(['10.0.0.9']);
    expect(r.resolvePtr('10.0.0.2', ['n'])).toBeNull();
    expect(r.resolvePtr('10.0.0.9', ['n'])).toBe('a.n');
    expect(r.endpoints('n').map((e) => e.container)).toEqual(['a', 'b']);
  });

  it('removeEndpoint and removeNetwork forget names and addresses', () => {
    const r = registry();
    r.removeEndpoint('front', 'web');
    expect(r.resolveA('web', ['front'])).toBeNull();
    expect(r.resolveA('www', ['front'])).toBeNull();
    expect(r.resolvePtr('10.1.0.2', ['front'])).toBeNull();
    r.removeEndpoint('front', 'web'); // twice: no-op
    r.removeEndpoint('nosuchnet', 'x');
    r.removeNetwork('back');
    expect(r.resolveA('db', ['front', 'back'])).toEqual(['10.1.0.3']);
    expect(r.endpoints('back')).toEqual([]);
    r.removeNetwork('back');
  });

  it('creates an unknown network on addEndpoint (rotate) and refuses a malformed IP', () => {
    const r = new DnsRegistry();
    r.addEndpoint('n', 'a', '10.0.0.2', ['x']);
    r.addEndpoint('n', 'b', '10.0.0.3', ['x']);
    expect(r.resolveA('x', ['n'])).toEqual(['10.0.0.2', '10.0.0.3']);
    expect(r.resolveA('x', ['n'])).toEqual(['10.0.0.3', '10.0.0.2']);
    expect(() => r.addEndpoint('n', 'c', '10.0.0.300', [])).toThrow(/invalid IPv4/);
    expect(() => r.addEndpoint('n', 'c', 'web', [])).toThrow(/invalid IPv4/);
  });

  it('skips names that cannot be DNS names (but keeps the others)', () => {
    const r = new DnsRegistry();
    r.addEndpoint('n', 'a..b', '10.0.0.2', ['good', 'x'.repeat(64), 'sp ace']);
    expect(r.resolveA('good', ['n'])).toEqual(['10.0.0.2']);
    expect(r.endpoints('n')[0].names.sort()).toEqual(['good', 'good.n']);
  });
});

describe('DnsRegistry: isLocal / resolvePtr', () => {
  it('tells local names, names under a client network, and the rest apart', () => {
    const r = registry();
    expect(r.isLocal('web', ['front'])).toBe('name');
    expect(r.isLocal('WWW.front.', ['front'])).toBe('name');
    expect(r.isLocal('nosuch.front', ['front'])).toBe('net-domain');
    expect(r.isLocal('a.b.front', ['front'])).toBe('net-domain');
    expect(r.isLocal('web.back', ['back'])).toBe('net-domain');
    expect(r.isLocal('web', ['back'])).toBe(false);
    expect(r.isLocal('nosuch.front', ['back'])).toBe(false);
    expect(r.isLocal('example.com', ['front', 'back'])).toBe(false);
    expect(r.isLocal('front', ['back'])).toBe(false);
  });

  it('a network name itself is local with no addresses', () => {
    const r = registry();
    expect(r.isLocal('front', ['front'])).toBe('name');
    expect(r.resolveA('FRONT', ['front'])).toEqual([]);
    // unless a container is called that
    r.addEndpoint('front', 'front', '10.1.0.7', []);
    expect(r.resolveA('front', ['front'])).toEqual(['10.1.0.7']);
  });

  it('resolvePtr answers container.network for addresses in the client networks only', () => {
    const r = registry();
    expect(r.resolvePtr('10.1.0.2', ['front'])).toBe('web.front');
    expect(r.resolvePtr('10.2.0.3', ['front', 'back'])).toBe('db.back');
    expect(r.resolvePtr('10.2.0.3', ['front'])).toBeNull();
    expect(r.resolvePtr('10.9.9.9', ['front'])).toBeNull();
  });
});

describe('DnsRegistry: order policies', () => {
  const addrs = ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5'];
  function svc(order: 'rotate' | 'random' | 'fixed', random?: () => number): DnsRegistry {
    const r = new DnsRegistry({ random });
    r.setNetwork('n', order);
    addrs.forEach((ip, i) => r.addEndpoint('n', `c${i}`, ip, ['svc']));
    return r;
  }

  it('fixed: registration order every time', () => {
    const r = svc('fixed');
    for (let i = 0; i < 5; i++) expect(r.resolveA('svc', ['n'])).toEqual(addrs);
  });

  it('rotate: over n answers each address is first exactly once, each a rotation of the list', () => {
    const r = svc('rotate');
    const firsts: string[] = [];
    for (let i = 0; i < addrs.length; i++) {
      const a = r.resolveA('svc', ['n']) as string[];
      expect(a).toEqual([...addrs.slice(i), ...addrs.slice(0, i)]);
      firsts.push(a[0]);
    }
    expect(firsts.sort()).toEqual(addrs);
    // and it goes on: the 5th answer starts again at the first address
    expect((r.resolveA('svc', ['n']) as string[])[0]).toBe(addrs[0]);
  });

  it('rotate: each name (and network scope) turns on its own', () => {
    const r = svc('rotate');
    expect(r.resolveA('svc', ['n'])?.[0]).toBe(addrs[0]);
    expect(r.resolveA('svc', ['n'])?.[0]).toBe(addrs[1]);
    expect(r.resolveA('svc.n', ['n'])?.[0]).toBe(addrs[0]);
    expect(r.resolveA('SVC', ['n'])?.[0]).toBe(addrs[2]); // same name, any case
    // single addresses are not rotated
    expect(r.resolveA('c0', ['n'])).toEqual([addrs[0]]);
  });

  it('rotate: rotation keeps working as containers come and go', () => {
    const r = svc('rotate');
    r.resolveA('svc', ['n']);
    r.removeEndpoint('n', 'c1');
    const rest = [addrs[0], addrs[2], addrs[3]];
    const firsts = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const a = r.resolveA('svc', ['n']) as string[];
      expect([...a].sort()).toEqual(rest);
      firsts.add(a[0]);
    }
    expect(firsts.size).toBe(3);
  });

  it('random: each answer is a permutation; every address comes first sometimes', () => {
    const r = svc('random', prng(42));
    const firsts = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const a = r.resolveA('svc', ['n']) as string[];
      expect([...a].sort()).toEqual(addrs);
      firsts.set(a[0], (firsts.get(a[0]) ?? 0) + 1);
    }
    expect(firsts.size).toBe(4);
    for (const n of firsts.values()) expect(n).toBeGreaterThan(50); // ~100 each
  });

  it('random: Fisher-Yates with the injected source', () => {
    // random() always 0: each step swaps position i with 0 -> [b, c, d, a]
    const r = svc('random', () => 0);
    expect(r.resolveA('svc', ['n'])).toEqual([addrs[1], addrs[2], addrs[3], addrs[0]]);
    // random() just below 1: j = i every time -> identity
    const id = svc('random', () => 0.999999);
    expect(id.resolveA('svc', ['n'])).toEqual(addrs);
  });

  it('setNetwork changes the policy of an existing network', () => {
    const r = svc('fixed');
    r.setNetwork('n', 'rotate');
    expect(r.resolveA('svc', ['n'])?.[0]).toBe(addrs[0]);
    expect(r.resolveA('svc', ['n'])?.[0]).toBe(addrs[1]);
    expect(r.endpoints('n').length).toBe(4);
  });

  it('several networks: the policy of the first client network holding the name', () => {
    const r = new DnsRegistry();
    r.setNetwork('a', 'fixed');
    r.setNetwork('b', 'rotate');
    r.addEndpoint('a', 'x', '10.1.0.2', ['svc']);
    r.addEndpoint('b', 'y', '10.2.0.2', ['svc']);
    expect(r.resolveA('svc', ['a', 'b'])).toEqual(['10.1.0.2', '10.2.0.2']);
    expect(r.resolveA('svc', ['a', 'b'])).toEqual(['10.1.0.2', '10.2.0.2']);
    expect(r.resolveA('svc', ['b', 'a'])).toEqual(['10.1.0.2', '10.2.0.2']);
    expect(r.resolveA('svc', ['b', 'a'])).toEqual(['10.2.0.2', '10.1.0.2']);
  });
});
