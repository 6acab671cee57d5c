// Every reason a frame is not forwarded, named once. The index of a reason is its counter
// slot in the per-port stats (workers/shared.ts); the name is what `vsw stats` prints.
// Add new reasons at the end: the order is the counter layout.

export const DROP_REASONS = [
  'runt',              // shorter than an Ethernet header
  'truncated',         // larger than the receive slot (MSG_TRUNC)
  'rx-queue-full',     // the kernel dropped or cut it: our receive ring/queue was full (we
                       // did not keep up); counted from PACKET_STATISTICS once a second
  'bad-src-mac',       // multicast or all-zero source MAC (not a valid station)
  'link-local',        // 01:80:c2:00:00:0x (STP, LACP, 802.1X...): never forwarded by a bridge
  'no-such-network',   // the ingress port belongs to no network (unknown or being removed)
  'reflected',         // destination learned on the ingress port
  'no-egress',         // flood with no other port in the network
  'tx-refused',        // the egress socket did not take it: full (EAGAIN/ENOBUFS), refused
                       // by the kernel (EINVAL/EMSGSIZE, e.g. over the MTU), or link gone
  'tx-error',          // sending failed outright (the egress fd is broken)
  'rx-error',          // receiving failed (the ingress interface vanished): port left idle
  'port-down',         // egress port is being removed
  // The router (dataplane/stages/gateway.ts, docs/L3.md)
  'not-routed',        // to the gateway MAC but not IPv4 (IPv6...), or an IP protocol NAT cannot carry
  'bad-ip',            // IPv4 header or L4 header malformed or truncated
  'bad-arp',           // ARP that is not Ethernet/IPv4 or is truncated (on the uplink)
  'ip-fragment',       // IPv4 fragments are not routed (no reassembly; Docker hosts rarely see them)
  'inter-network',     // routed from one vsw network to another: networks are isolated
  'internal-network',  // to the outside from an --internal network
  'no-route',          // to the outside with no uplink
  'neigh-miss',        // next hop's MAC unknown: an ARP request was sent, the frame dropped
  'ttl-exceeded',      // TTL ran out (ICMP time exceeded sent back)
  'conntrack-full',    // the connection table is full
  'nat-ports-exhausted', // no free NAT port for a new connection
  'conntrack-source-limit', // the source address holds its maximum of connections
  'no-service',        // to a switch address and port nothing serves (no published port)
  'uplink-not-ours',   // on the uplink, not for the switch's MAC/address (the host's own traffic)
  'icc-disabled',      // container to container on a network with icc=false
  'punt-full',         // DNS query dropped: the main thread's queue is full
  // 802.1Q VLANs (dataplane/stages/ingress.ts, docs/VLAN.md)
  'tagged-on-access',  // a VLAN-tagged frame (VID 1-4094) on an access port of a VLAN network
  'vlan-not-member',   // tagged with a VID the port does not carry (trunk, tagged uplink)
  'untagged-on-trunk', // untagged or priority-tagged on a port with no native VLAN
  'qinq',              // an 802.1ad outer tag (0x88a8) or a second tag under the first
  'runt-after-untag',  // tagged, but too short to hold an Ethernet header without its tag
  // A bug of ours, never of the frame's: a stage threw on this frame. Dropped and counted so
  // that one bad frame cannot take a worker (and every port it serves) down.
  'stage-error',
  // Port security and per-port limits (dataplane/stages/guard.ts, docs/L3.md "Hostile containers")
  'spoofed-source',    // from a container port, a source MAC, ARP sender or IPv4 source not its endpoint's
  'conntrack-port-limit', // the ingress port holds its maximum share of the connection table
  'icmp-ratelimited',  // TTL ran out, and the ICMP error was not sent: the error rate limit (like Linux icmp_msgs_per_sec)
  // VXLAN overlay segments (dataplane/vxlan/, docs/VXLAN.md); counted on the VTEP socket's
  // port (receive) or on the overlay port (send)
  'vxlan-bad-flags',   // received VXLAN header without the I flag
  'vxlan-bad-vni',     // received for a VNI no network of this VTEP carries
  'vxlan-runt',        // received datagram shorter than the VXLAN header + an Ethernet header
  'vxlan-oversize',    // received inner frame larger than the network's MTU + 18 (or the slot)
  'vxlan-host-mac',    // a frame of this host's own network address or gateway (per host, never carried across)
  'vxlan-no-gso',      // a GSO frame vsw cannot segment for the overlay (TCPv6, UDP GSO, bad headers)
  // Link impairment (dataplane/impair/, vsw impair): counted on the impaired port. Two are
  // not drops but what impairment did to frames that still left: impair-duplicate (one
  // more copy sent) and impair-corrupt (sent with one bit flipped).
  'impair-loss',       // lost on purpose (--loss, --loss-model)
  'impair-duplicate',  // sent twice (--duplicate): counted, not dropped
  'impair-corrupt',    // one bit flipped (--corrupt): counted, still sent
  'impair-queue-full', // the delay queue was full (--limit frames, or its byte pool)
  'impair-rate',       // waiting for the rate (--rate) when the delay queue was full
] as const;

export type DropReason = (typeof DROP_REASONS)[number];

/** Reason name -> counter index, e.g. DROP.reflected. */
export const DROP: { readonly [K in DropReason]: number } = Object.freeze(
  Object.fromEntries(DROP_REASONS.map((r, i) => [r, i])) as { [K in DropReason]: number },
);

export const NUM_DROP_REASONS = DROP_REASONS.length;
