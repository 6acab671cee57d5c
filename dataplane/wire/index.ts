// dataplane/wire: zero-copy packet views, builders, checksums and printers.
// Imports nothing outside this directory. See each file's header for its layout.

export * from './bytes';
export * from './mac';
export * from './ip';
export * from './checksum';
export * from './vnet';
export * from './ethernet';
export * from './vlan';
export * from './arp';
export * from './ipv4';
export * from './l4';
export * from './udp';
export * from './tcp';
export * from './icmp';
export * from './format';
