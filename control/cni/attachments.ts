// The daemon's attachments API as vsw-cni calls it (POST/GET/DELETE /attachments): an
// attachment is one interface of a runtime's sandbox on a vsw network, made and owned by the
// daemon (the veth, its host end on the switch, the inner end moved into the netns and
// configured). Thin calls over control/client.ts until the daemon side lands there.

import { Client } from '../client';
import type { PortMapping } from '../types';

export interface AttachmentCreate {
  owner: 'docker' | 'cni';
  /** `${CNI_CONTAINERID}/${CNI_IFNAME}`: one per interface of a sandbox. */
  endpoint: string;
  sandbox: string;
  name: string;
  network: string;
  ip?: string;
  mac?: string;
  ifname?: string;
  netns?: string;
  defaultRoute?: boolean;
  mtu?: number;
  aliases?: string[];
  publish?: PortMapping[];
}

export interface AttachmentInfo {
  owner: 'docker' | 'cni';
  endpoint: string;
  sandbox: string;
  name: string;
  network: string;
  ip: string;
  prefixLen: number;
  gateway: string;
  mac: string;
  mtu: number;
  hostIf: string;
  innerIf: string;
  netns?: string;
  aliases: string[];
  publish: PortMapping[];
}

const path = (endpoint: string): string => `/attachments/${encodeURIComponent(endpoint)}`;

export function createAttachment(c: Client, spec: AttachmentCreate): Promise<AttachmentInfo> {
  return c.post<AttachmentInfo>('/attachments', spec);
}

export function getAttachment(c: Client, endpoint: string): Promise<AttachmentInfo> {
  return c.get<AttachmentInfo>(path(endpoint));
}

export function deleteAttachment(c: Client, endpoint: string): Promise<void> {
  return c.del(path(endpoint));
}
