// Docker's plugin protocol (libnetwork remote NetworkDriver and IpamDriver, Docker 20.10),
// as far as vsw serves it: the request shapes, the option names, the error answers.
// Every call is an HTTP POST with a JSON body, answered with this content type. The
// network driver reports failure as {"Err": "..."}, the IPAM driver as {"Error": "..."},
// with HTTP 200 (libnetwork reads the field of a 200 answer; of a non-200 answer it reads
// only "Err", so an IPAM error would arrive as raw JSON). An unknown call is a 404, which
// Docker takes as "not implemented".

export const PLUGIN_CONTENT_TYPE = 'application/vnd.docker.plugins.v1+json';

/** Docker's option keys (libnetwork netlabel). */
export const OPT_GENERIC = 'com.docker.network.generic';
export const OPT_MTU = 'com.docker.network.driver.mtu';
export const OPT_INTERNAL = 'com.docker.network.internal';
export const OPT_IPV6 = 'com.docker.network.enable_ipv6';
export const OPT_PORTMAP = 'com.docker.network.portmap';
export const OPT_GATEWAY_REQUEST = 'com.docker.network.gateway';
export const REQUEST_ADDRESS_TYPE = 'RequestAddressType';

/** The -o options a vsw network takes (docker network create -d vsw -o KEY=VALUE). */
export const DRIVER_OPTIONS = [OPT_MTU, 'vlan', 'internal', 'icc', 'dns-order'] as const;

export interface IpamData {
  AddressSpace?: string;
  Pool: string;
  Gateway?: string;
  AuxAddresses?: Record<string, string>;
}

export interface CreateNetworkRequest {
  NetworkID: string;
  Options?: Record<string, unknown>;
  IPv4Data?: IpamData[];
  IPv6Data?: IpamData[];
}

export interface EndpointInterface {
  Address?: string;
  AddressIPv6?: string;
  MacAddress?: string;
}

export interface CreateEndpointRequest {
  NetworkID: string;
  EndpointID: string;
  Options?: Record<string, unknown>;
  Interface?: EndpointInterface;
}

export interface JoinRequest {
  NetworkID: string;
  EndpointID: string;
  SandboxKey: string;
  Options?: Record<string, unknown>;
}

/** One entry of com.docker.network.portmap. */
export interface DockerPortBinding {
  Proto: number;
  IP?: string;
  Port: number;
  HostIP?: string;
  HostPort: number;
  HostPortEnd?: number;
}

/** A refusal the protocol carries back to the docker command. */
export class PluginError extends Error {}
