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
] as const;

export type DropReason = (typeof DROP_REASONS)[number];

/** Reason name -> counter index, e.g. DROP.reflected. */
export const DROP: { readonly [K in DropReason]: number } = Object.freeze(
  Object.fromEntries(DROP_REASONS.map((r, i) => [r, i])) as { [K in DropReason]: number },
);

export const NUM_DROP_REASONS = DROP_REASONS.length;
