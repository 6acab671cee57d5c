// guard: port security, called by ingress once the frame's network is known (docs/L3.md,
// "Hostile containers"). A container port (one with a guard in the port table: its
// endpoint's MAC and IPv4 addresses, from the control plane) may only send as itself:
// - the Ethernet source must be the endpoint's MAC (else it could move a neighbour's MAC
//   table entry to itself: MAC poisoning);
// - ARP (Ethernet/IPv4): the sender MAC must be that MAC and the sender address one of the
//   endpoint's, or 0.0.0.0 (an RFC 5227 address probe, `arping -D`: it claims nothing);
// - IPv4: the source must be one of the endpoint's addresses. 0.0.0.0 is not allowed: vsw
//   serves no DHCP, so an unconfigured source has nowhere to go, and allowing it would let a
//   container open connections from an address that is not its own.
// Anything else is dropped as spoofed-source, like OVS/OVN port security and Kubernetes'
// macspoofchk. Other EtherTypes (IPv6 ...) are checked by their Ethernet source only. Ports
// without a guard (the host TAP, trunks, the uplink, a network created with
// --port-security off) are not checked. A truncated ARP or IPv4 header is left to the router
// (bad-arp, bad-ip): only what can be read is judged here.

import { DROP } from '../drops';
import type { Packet } from '../packet';
import type { PortTable } from '../tables/ports';
import { ArpView } from '../wire/arp';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4 } from '../wire/ethernet';
import { Ipv4View } from '../wire/ipv4';

const arp = new ArpView();
const ip4 = new Ipv4View();

/** Whether ip (uint32 or int32) is one of the port's addresses. */
function ownIp(ips: Int32Array, ip: number): boolean {
  ip |= 0;
  for (let i = 0; i < ips.length; i++) if (ips[i] === ip) return true;
  return false;
}

/**
 * Port security for a frame received on a guarded port: true when it may go on, else it is
 * dropped (spoofed-source). Unguarded ports always pass.
 */
export function sourceAllowed(p: Packet, ports: PortTable): boolean {
  const port = p.inPort;
  if (ports.guarded[port] !== 1) return true;
  const ips = ports.guardIps[port];
  const hi = ports.guardMacHi[port];
  const lo = ports.guardMacLo[port];
  if (ips === undefined || p.srcHi !== hi || (p.srcLo | 0) !== lo) { p.dropWith(DROP['spoofed-source']); return false; }
  const et = p.etherType;
  const l3len = p.ethOff + p.ethLen - p.l3Off;
  if (et === ETHERTYPE_ARP) {
    const a = arp;
    if (!a.reset(p.buf, p.l3Off, l3len) || !a.isEthernetIpv4) return true;
    const spa = a.spa;
    if (a.shaHi !== hi || (a.shaLo | 0) !== lo || (spa !== 0 && !ownIp(ips, spa))) {
      p.dropWith(DROP['spoofed-source']);
      return false;
    }
    return true;
  }
  if (et === ETHERTYPE_IPV4) {
    if (!ip4.reset(p.buf, p.l3Off, l3len)) return true;
    if (!ownIp(ips, ip4.src)) { p.dropWith(DROP['spoofed-source']); return false; }
  }
  return true;
}
