// `vsw network create|ls|inspect|rm|connect|disconnect`.

import { Command, InvalidArgumentError as OptionValueError, Option } from 'commander';
import { formatJson, networksTable } from '../format';
import { checkAlias } from '../publish';
import type { DnsOrder, EndpointInfo, NetworkCreate, NetworkInfo } from '../types';
import { eachName, enc, usageError, type Cli } from './common';
import { bool, dnsOrder, integer, repeatable } from './options';

/** --port-security: on or off (true and false too). */
function onOff(v: string): boolean {
  const s = v.trim().toLowerCase();
  if (s === 'on' || s === 'true') return true;
  if (s === 'off' || s === 'false') return false;
  throw new OptionValueError('Expected on or off.');
}

export function addNetworkCommands(program: Command, { io, done, sub, client, tableCommand }: Cli): void {
  const network = sub(program, 'network', 'Manage networks (create, ls, inspect, rm, connect, disconnect)', false);
  network.usage('COMMAND [ARGS...]');

  sub(network, 'create', 'Create a network; prints its name')
    .argument('<name>', 'network name')
    .addOption(new Option('--subnet <cidr>', 'subnet in CIDR form, e.g. 10.10.0.0/24 (default: a free one from the pool)'))
    .addOption(new Option('--gateway <ip>', 'gateway address (default: the first address of the subnet)'))
    .addOption(new Option('--ip-range <cidr>', 'allocate container addresses from this CIDR inside the subnet'))
    .addOption(new Option('--mtu <bytes>', 'MTU of the network (default 1500)').argParser(integer()))
    .addOption(new Option('--internal', 'no route out and no published ports (containers reach each other, the gateway and the host)'))
    .addOption(new Option('--icc <true|false>', 'whether containers of the network may talk to each other (default true; false: only to the gateway and the host)').argParser(bool))
    .addOption(new Option('--dns-order <order>', 'order of the addresses in a DNS answer for a name with several: rotate (default), random or fixed').argParser(dnsOrder))
    .addOption(new Option('--port-security <on|off>', 'port security: container ports may send only from their own MAC and address (default on; off: any source, for experiments)').argParser(onOff))
    .addOption(new Option('--vlan <id>', '802.1Q VLAN id, 1 to 4094: container ports are access ports of that VLAN, trunks carry it tagged (default: untagged)').argParser(integer(1, 4094)))
    // VXLAN (docs/VXLAN.md)
    .addOption(new Option('--vxlan <vni>', 'a VXLAN overlay network spanning hosts, with this VNI (1 to 16777215); default MTU: the underlay MTU - 50').argParser(integer()))
    .addOption(new Option('--vxlan-port <port>', 'with --vxlan: UDP port of the tunnel (default 4789)').argParser(integer()))
    .addOption(new Option('--underlay-ip <ip>', "with --vxlan: this host's address to send from and listen on (default: the source address toward the first peer)"))
    .addOption(new Option('--peer <ip>', 'with --vxlan: a remote VTEP that gets broadcast and unknown traffic (repeatable)').argParser(repeatable((s: string) => s)))
    .addOption(new Option('--arp-proxy', 'with --vxlan: answer ARP for remote containers this host knows (learned from the overlay) instead of flooding it to every peer (default off)'))
    .action(async (name: string, o: {
      subnet?: string; gateway?: string; ipRange?: string; mtu?: number; internal?: boolean; icc?: boolean; dnsOrder?: DnsOrder;
      vlan?: number; portSecurity?: boolean; vxlan?: number; vxlanPort?: number; underlayIp?: string; peer?: string[]; arpProxy?: boolean;
    }, cmd: Command) => {
      const spec: NetworkCreate = { name };
      if (o.subnet !== undefined) spec.subnet = o.subnet;
      if (o.gateway !== undefined) spec.gateway = o.gateway;
      if (o.ipRange !== undefined) spec.ipRange = o.ipRange;
      if (o.mtu !== undefined) spec.mtu = o.mtu;
      if (o.internal) spec.internal = true;
      if (o.icc !== undefined) spec.icc = o.icc;
      if (o.dnsOrder !== undefined) spec.dnsOrder = o.dnsOrder;
      if (o.vlan !== undefined) spec.vlan = o.vlan;
      if (o.portSecurity !== undefined) spec.portSecurity = o.portSecurity;
      if (o.vxlan !== undefined) {
        spec.vxlan = { vni: o.vxlan };
        if (o.vxlanPort !== undefined) spec.vxlan.port = o.vxlanPort;
        if (o.underlayIp !== undefined) spec.vxlan.underlayIp = o.underlayIp;
        if (o.peer !== undefined) spec.vxlan.peers = o.peer;
        if (o.arpProxy === true) spec.vxlan.arpProxy = true;
      } else if (o.vxlanPort !== undefined || o.underlayIp !== undefined || o.peer !== undefined || o.arpProxy === true) {
        return usageError(cmd, '--vxlan-port, --underlay-ip, --peer and --arp-proxy need --vxlan VNI');
      }
      const info = await client(cmd).post<NetworkInfo>('/networks', spec);
      io.out(`${info.name}\n`);
    });

  tableCommand<NetworkInfo>(network, 'ls', 'List networks (NAME ID SUBNET GATEWAY MTU ENDPOINTS DEFAULT FLAGS: vlan=ID, internal, no-icc, dns=ORDER, vxlan=VNI,peers=N, arp-proxy)',
    '/networks', networksTable).alias('list');

  sub(network, 'inspect', 'Show a network as JSON: subnet, gateway (IP, MAC), settings, ports, endpoints with IP, MAC and aliases')
    .argument('<name>', 'network name')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      io.out(formatJson(await client(cmd).get<NetworkInfo>(`/networks/${enc(name)}`)));
    });

  sub(network, 'rm', 'Remove networks (refused while containers are attached); prints each name')
    .alias('remove')
    .argument('<name...>', 'network names')
    .action(async (names: string[], _o: unknown, cmd: Command) => {
      done(await eachName(io, names, (n) => client(cmd).del(`/networks/${enc(n)}`)));
    });

  // VXLAN: vsw network peer add|rm NAME IP
  const peer = sub(network, 'peer', 'Add or remove a peer VTEP of a VXLAN network (add, rm)', false);
  sub(peer, 'add', 'Add a peer VTEP: it gets the network\'s broadcast, multicast and unknown unicast')
    .argument('<network>', 'network name').argument('<ip>', "the peer's underlay address")
    .action(async (net: string, ip: string, _o: unknown, cmd: Command) => {
      await client(cmd).post<NetworkInfo>(`/networks/${enc(net)}/peers`, { ip });
    });
  sub(peer, 'rm', 'Remove a peer VTEP: it gets nothing more from this host (its learned MACs age out)')
    .alias('remove')
    .argument('<network>', 'network name').argument('<ip>', "the peer's underlay address")
    .action(async (net: string, ip: string, _o: unknown, cmd: Command) => {
      await client(cmd).del(`/networks/${enc(net)}/peers?ip=${enc(ip)}`);
    });

  sub(network, 'connect', 'Attach a container to a network')
    .argument('<network>', 'network name')
    .argument('<container>', 'container name')
    .option('--ip <ip>', 'address for the container (default: the next free one)')
    .option('--alias <name>', 'an extra DNS name of the container in this network (repeatable)', repeatable(checkAlias))
    .action(async (net: string, container: string, o: { ip?: string; alias?: string[] }, cmd: Command) => {
      const body: { container: string; ip?: string; aliases?: string[] } = { container };
      if (o.ip !== undefined) body.ip = o.ip;
      if (o.alias !== undefined) body.aliases = o.alias;
      await client(cmd).post<EndpointInfo>(`/networks/${enc(net)}/connect`, body);
    });

  sub(network, 'disconnect', 'Detach a container from a network')
    .argument('<network>', 'network name')
    .argument('<container>', 'container name')
    .action(async (net: string, container: string, _o: unknown, cmd: Command) => {
      await client(cmd).post<void>(`/networks/${enc(net)}/disconnect`, { container });
    });
}
