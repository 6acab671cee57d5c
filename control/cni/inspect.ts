// CHECK's look inside the container: CNI_IFNAME in the namespace at CNI_NETNS (a path, not
// a name under /run/netns, so `nsenter --net=PATH ip` rather than `ip -n`), its MAC and its
// IPv4 addresses. A namespace that is gone is the spec's code 3 (container unknown).

import * as fs from 'fs';
import { runJson } from '../exec';
import { CNI_ERR, CniError } from './spec';

export interface InterfaceState {
  mac: string;
  /** IPv4 addresses as CIDRs (10.89.0.5/24). */
  addresses: string[];
  mtu: number;
}

interface IpAddr {
  ifname: string;
  address?: string;
  mtu: number;
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

/** The interface's state, or undefined when the namespace has no such interface. */
export async function inspectInterface(netns: string, ifname: string): Promise<InterfaceState | undefined> {
  if (!fs.existsSync(netns)) throw new CniError(CNI_ERR.UNKNOWN_CONTAINER, `the network namespace ${netns} does not exist`);
  let links: IpAddr[];
  try {
    links = await runJson<IpAddr[]>('nsenter', [`--net=${netns}`, 'ip', '-j', 'addr', 'show', 'dev', ifname]);
  } catch (e) {
    if (/does not exist|Cannot find device/i.test((e as Error).message)) return undefined;
    throw new CniError(CNI_ERR.IO_FAILURE, (e as Error).message);
  }
  const l = links[0];
  if (!l) return undefined;
  return {
    mac: l.address ?? '',
    mtu: l.mtu,
    addresses: (l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
  };
}
