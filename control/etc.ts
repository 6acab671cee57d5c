// A container's /etc/resolv.conf and /etc/hosts. `ip netns exec NAME` bind-mounts every file
// of /etc/netns/NAME over /etc, so whatever runs in the container (vsw run/exec, or a user's
// own `ip netns exec`) resolves through the switch's embedded DNS on its gateway, and sees
// its --link entries, without touching the host's files.

import * as fs from 'node:fs';
import * as path from 'node:path';

export const ETC_NETNS = '/etc/netns';

export interface ContainerEtc {
  /** The embedded DNS (the gateway of the container's first network); none = no resolv.conf. */
  nameserver?: string;
  /** The container's own name and address (first network), for its /etc/hosts. */
  self?: { name: string; ip: string };
  /** --link entries: `IP NAME ALIAS`. */
  links: { ip: string; name: string; alias?: string }[];
}

function dirOf(container: string): string {
  return path.join(ETC_NETNS, container);
}

/** Write (or rewrite) the container's files; each is written to a temp file and renamed. */
export function writeContainerEtc(container: string, etc: ContainerEtc): void {
  const dir = dirOf(container);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const put = (name: string, text: string): void => {
    const tmp = path.join(dir, `.${name}.tmp`);
    fs.writeFileSync(tmp, text, { mode: 0o644 });
    fs.renameSync(tmp, path.join(dir, name));
  };
  if (etc.nameserver) {
    put('resolv.conf', `# written by vsw: the switch's embedded DNS on the gateway\nnameserver ${etc.nameserver}\noptions ndots:0\n`);
  } else {
    fs.rmSync(path.join(dir, 'resolv.conf'), { force: true });
  }
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'];
  if (etc.self) lines.push(`${etc.self.ip}\t${etc.self.name}`);
  for (const l of etc.links) lines.push(`${l.ip}\t${l.name}${l.alias && l.alias !== l.name ? ` ${l.alias}` : ''}`);
  put('hosts', `# written by vsw\n${lines.join('\n')}\n`);
}

export function removeContainerEtc(container: string): void {
  fs.rmSync(dirOf(container), { recursive: true, force: true });
}
