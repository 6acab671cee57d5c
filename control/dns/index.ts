// The embedded DNS server (docs/L3.md, DNS): wire format, name registry, upstream
// forwarder, and the server that ties them together.

export * from '../../dataplane/dns/message';
export * from '../../dataplane/dns/registry';
export * from './upstream';
export * from './uplink';
export * from './server';
