// Docker's IpamDriver, backed by vsw's address rules (control/ipam.ts): pools are subnets
// that overlap no vsw network, no other pool and not the uplink (a pool Docker does not
// name comes from vsw's default pool, 10.89.0.0/24 up); the gateway is the one Docker asks
// for (or the first usable address); container addresses skip the gateway and the address
// vsw's host port takes on the network (the subnet's last usable one). Pools and addresses
// are kept in the plugin's state (state.ts) and saved before they are answered.
//
//   GetCapabilities          {RequiresMACAddress: false, RequiresRequestReplay: false}
//   GetDefaultAddressSpaces  {LocalDefaultAddressSpace: 'vsw-local', GlobalDefaultAddressSpace: 'vsw-global'}
//   RequestPool {Pool?, SubPool?, V6}        -> {PoolID, Pool, Data: {}}
//   ReleasePool {PoolID}                     -> {}
//   RequestAddress {PoolID, Address?, Options{RequestAddressType}} -> {Address: CIDR, Data: {}}
//   ReleaseAddress {PoolID, Address}         -> {}

import type { Engine } from '../types';
import * as ipam from '../ipam';
import { OPT_GATEWAY_REQUEST, PluginError, REQUEST_ADDRESS_TYPE } from './protocol';
import type { DockerStore, PoolRecord } from './state';

export const LOCAL_ADDRESS_SPACE = 'vsw-local';
export const GLOBAL_ADDRESS_SPACE = 'vsw-global';

type Body = Record<string, unknown>;

function str(b: Body, k: string): string | undefined {
  const v = b[k];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new PluginError(`${k} must be a string`);
  return v;
}

export class DockerIpam {
  constructor(private readonly engine: Pick<Engine, 'listNetworks' | 'info'>, private readonly store: DockerStore) {}

  /** Subnets a new pool or network may not overlap: vsw's networks, the uplink, the pools. */
  taken(exceptPool?: string): { name: string; subnet: string }[] {
    const up = this.engine.info().uplink;
    return [
      ...this.engine.listNetworks().map((n) => ({ name: n.name, subnet: n.subnet })),
      ...(up ? [{ name: 'uplink', subnet: up.ip }] : []),
      ...this.store.state.pools.filter((p) => p.id !== exceptPool).map((p) => ({ name: `docker pool ${p.pool}`, subnet: p.pool })),
    ];
  }

  handle(call: string, b: Body): unknown {
    switch (call) {
      case 'GetCapabilities': return { RequiresMACAddress: false, RequiresRequestReplay: false };
      case 'GetDefaultAddressSpaces': return { LocalDefaultAddressSpace: LOCAL_ADDRESS_SPACE, GlobalDefaultAddressSpace: GLOBAL_ADDRESS_SPACE };
      case 'RequestPool': return this.requestPool(b);
      case 'ReleasePool': return this.releasePool(b);
      case 'RequestAddress': return this.requestAddress(b);
      case 'ReleaseAddress': return this.releaseAddress(b);
      default: return undefined;
    }
  }

  private requestPool(b: Body): unknown {
    if (b.V6 === true) throw new PluginError('vsw IPAM: IPv6 pools are not supported (vsw switches IPv4)');
    const want = str(b, 'Pool');
    const sub = str(b, 'SubPool');
    // The checks of a vsw network's subnet and range, with the pools as other networks.
    const norm = ipam.normalizeNetwork({ name: 'docker-pool', subnet: want, ipRange: sub }, { existingSubnets: this.taken(), usedPrefixes: [] });
    const rec: PoolRecord = { id: `vsw/${norm.subnet}`, pool: norm.subnet, addresses: [] };
    if (sub !== undefined) rec.range = norm.ipRange;
    this.store.state.pools.push(rec);
    this.store.save();
    return { PoolID: rec.id, Pool: rec.pool, Data: {} };
  }

  private pool(b: Body): PoolRecord {
    const id = str(b, 'PoolID');
    const p = id === undefined ? undefined : this.store.pool(id);
    if (!p) throw new PluginError(`vsw IPAM: no pool '${id ?? ''}'`);
    return p;
  }

  private releasePool(b: Body): unknown {
    const p = this.pool(b);
    this.store.state.pools = this.store.state.pools.filter((x) => x !== p);
    this.store.save();
    return {};
  }

  private requestAddress(b: Body): unknown {
    const p = this.pool(b);
    const opts = (b.Options ?? {}) as Record<string, unknown>;
    const want = str(b, 'Address');
    const prefix = ipam.parseCidr(p.pool, 32).prefixLen;
    if (opts[REQUEST_ADDRESS_TYPE] === OPT_GATEWAY_REQUEST) {
      const gw = want ?? ipam.firstUsable(p.pool);
      if (!ipam.cidrContains(p.pool, gw)) throw new PluginError(`vsw IPAM: gateway ${gw} is not inside pool ${p.pool}`);
      // The gateway rules of a vsw network (not the network or broadcast address, not the host port's).
      ipam.normalizeNetwork({ name: 'docker-pool', subnet: p.pool, gateway: gw }, { existingSubnets: this.taken(p.id), usedPrefixes: [] });
      if (p.addresses.includes(gw)) throw new PluginError(`vsw IPAM: ${gw} is already given to a container`);
      p.gateway = gw;
      this.store.save();
      return { Address: `${gw}/${prefix}`, Data: {} };
    }
    const used = new Set(p.addresses);
    const ip = ipam.allocateIp({ subnet: p.pool, gateway: p.gateway ?? ipam.firstUsable(p.pool), ipRange: p.range }, used, want);
    p.addresses.push(ip);
    this.store.save();
    return { Address: `${ip}/${prefix}`, Data: {} };
  }

  private releaseAddress(b: Body): unknown {
    const p = this.pool(b);
    const addr = str(b, 'Address')?.split('/')[0];
    if (addr !== undefined && addr === p.gateway) p.gateway = undefined;
    else p.addresses = p.addresses.filter((a) => a !== addr);
    this.store.save();
    return {};
  }
}
