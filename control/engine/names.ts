// The DNS names a container takes, and the collisions create and connect refuse.
//
// The embedded DNS (dataplane/dns/registry.ts) answers, in each network a container is on,
// to its name, to NAME.NETWORK, to each --alias and to ALIAS.NETWORK, compared as DNS
// compares names: case-insensitively, a trailing dot ignored. So names that differ for
// vsw (namespaces are case-sensitive files) can be one name for DNS, and a container named
// `c3.bridge` would answer for `c3`'s name in network bridge. Refused here:
//   - a container name equal to another's but for case ('VSWR-CASE' beside 'vswr-case');
//   - a container's own names (its name, NAME.NETWORK) equal to any name of another
//     container, own or alias ('c3.bridge' beside c3 on bridge; a container named 'web'
//     beside containers with the alias 'web');
//   - an alias equal to another container's own names.
// Containers may share an alias (that is what aliases are for: the answer lists them all).
// Names are compared across all networks, not only shared ones: a client on two networks
// sees the names of both, and a later `network connect` must not create a collision.

import { ConflictError } from '../errors';
import { normalizeName } from '../../dataplane/dns/message';
import type { ContainerRecord } from './records';

/** The endpoints that give a container DNS names: network and aliases. */
export type NamedEndpoint = { network: string; aliases?: string[] };

/** A name as DNS compares it. */
export function dnsKey(name: string): string {
  return normalizeName(name);
}

interface Taken {
  /** The name as written. */
  text: string;
  /** What the name is, for messages: "the name of container 'c3' in network 'bridge'". */
  what: string;
  alias: boolean;
  /** For an alias: the alias as given (ALIAS of ALIAS.NETWORK). */
  alias0?: string;
}

/** Every DNS name of a container: key -> what it is. */
function namesOf(name: string, endpoints: NamedEndpoint[]): Map<string, Taken> {
  const out = new Map<string, Taken>();
  const put = (n: string, t: Omit<Taken, 'text'>): void => {
    const k = dnsKey(n);
    const had = out.get(k);
    if (!had || (had.alias && !t.alias)) out.set(k, { ...t, text: n });
  };
  put(name, { what: `the name of container '${name}'`, alias: false });
  for (const e of endpoints) {
    put(`${name}.${e.network}`, { what: `the name of container '${name}' in network '${e.network}'`, alias: false });
    for (const a of e.aliases ?? []) {
      put(a, { what: `an alias of container '${name}' in network '${e.network}'`, alias: true, alias0: a });
      put(`${a}.${e.network}`, { what: `an alias of container '${name}' in network '${e.network}'`, alias: true, alias0: a });
    }
  }
  return out;
}

/**
 * ConflictError when container `name` with these endpoints would answer to a DNS name that
 * is another container's (see the header). `others` are the other containers.
 */
export function checkDnsNames(name: string, endpoints: NamedEndpoint[], others: readonly ContainerRecord[]): void {
  const key = dnsKey(name);
  for (const o of others) {
    if (o.name !== name && dnsKey(o.name) === key) {
      throw new ConflictError(
        `container name '${name}' collides with container '${o.name}': DNS names are case-insensitive, pick another name`,
      );
    }
  }
  const mine = namesOf(name, endpoints);
  for (const o of others) {
    if (o.name === name) continue;
    for (const [k, theirs] of namesOf(o.name, o.endpoints)) {
      const ours = mine.get(k);
      if (!ours || (ours.alias && theirs.alias)) continue;
      const who = ours.alias ? `alias '${ours.alias0}' of container '${name}'` : `container '${name}'`;
      const caseNote = ours.text !== theirs.text ? ` (DNS compares names case-insensitively: '${ours.text}' is '${theirs.text}')` : '';
      throw new ConflictError(
        `${who} would answer to the DNS name '${ours.text}', which is ${theirs.what}${caseNote}: pick another ${ours.alias ? 'alias' : 'name'}`,
      );
    }
  }
}
