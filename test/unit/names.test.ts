// The DNS name collisions create and connect refuse (control/engine/names.ts).

import { describe, expect, it } from 'vitest';
import { ConflictError } from '../../control/errors';
import { checkDnsNames, dnsKey } from '../../control/engine/names';
import type { ContainerRecord } from '../../control/engine/records';

function rec(name: string, eps: { network: string; aliases?: string[] }[] = [{ network: 'bridge' }]): ContainerRecord {
  return {
    name, id: '000000000000', mode: 'bridge', netns: name, cmd: [], detach: false, rm: false, status: 'created', created: '',
    endpoints: eps.map((e, i) => ({ network: e.network, ip: `10.89.0.${i + 2}`, mac: '', hostIf: '', innerIf: `eth${i}`, aliases: e.aliases })),
  };
}
const on = (network: string, aliases?: string[]) => [{ network, aliases }];

describe('checkDnsNames', () => {
  const others = [rec('vswr-case'), rec('c3'), rec('w1', on('bridge', ['web'])), rec('n2', on('net2'))];

  it.each([
    ['VSWR-CASE', on('bridge'), /container name 'VSWR-CASE' collides with container 'vswr-case': DNS names are case-insensitive/],
    ['Vswr-Case', [], /collides with container 'vswr-case'/],
    ['c3.bridge', on('bridge'), /container 'c3\.bridge' would answer to the DNS name 'c3\.bridge', which is the name of container 'c3' in network 'bridge'/],
    ['C3.Bridge', on('net2'), /which is the name of container 'c3' in network 'bridge' \(DNS compares names case-insensitively/],
    ['c3.bridge', [], /the name of container 'c3' in network 'bridge'/],
    ['web', on('bridge'), /which is an alias of container 'w1' in network 'bridge': pick another name/],
    ['WEB.bridge', on('net2'), /an alias of container 'w1'/],
    ['x', on('bridge', ['c3']), /alias 'c3' of container 'x' would answer to the DNS name 'c3', which is the name of container 'c3': pick another alias/],
    ['x', on('bridge', ['N2.NET2']), /alias 'N2\.NET2' of container 'x'.*the name of container 'n2' in network 'net2'/],
    ['c3.', on('bridge'), /container name 'c3\.' collides with container 'c3'/],
  ])('refuses %s %j', (name, eps, why) => {
    expect(() => checkDnsNames(name, eps, others)).toThrow(ConflictError);
    expect(() => checkDnsNames(name, eps, others)).toThrow(why);
  });

  it('accepts distinct names, shared aliases (in any case) and a container checked against itself', () => {
    expect(() => checkDnsNames('c4', on('bridge', ['web', 'WEB2']), others)).not.toThrow();
    expect(() => checkDnsNames('w2', on('bridge', ['Web']), others)).not.toThrow();
    expect(() => checkDnsNames('c3.other', on('bridge'), others)).not.toThrow();
    // connect: c3's own endpoints plus a new network
    expect(() => checkDnsNames('c3', [...others[1].endpoints, { network: 'net2' }], others)).not.toThrow();
  });

  it('connect: a new network can create the collision', () => {
    const all = [rec('a.net2'), rec('a')];
    expect(() => checkDnsNames('a', [...all[1].endpoints, { network: 'net2' }], all)).toThrow(/'a\.net2'.*the name of container 'a\.net2'/);
  });

  it('dnsKey compares as DNS does', () => {
    expect(dnsKey('C3.Bridge.')).toBe('c3.bridge');
  });
});
