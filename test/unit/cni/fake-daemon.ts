// A fake vsw daemon for vsw-cni's unit tests: the API's /networks and /attachments routes
// over a Unix socket, with the attachment contract's semantics (201 new, 200 the same again,
// 409 the same endpoint with other fields, 404 unknown), and a log of every request.

import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import type { AttachmentCreate, AttachmentInfo, NetworkInfo } from '../../../control/types';

export interface Logged {
  method: string;
  path: string;
  body?: unknown;
}

export interface FakeDaemon {
  sock: string;
  log: Logged[];
  networks: Map<string, NetworkInfo>;
  attachments: Map<string, AttachmentInfo>;
  /** The next POST /attachments answers this error instead (status, code, message). */
  failNextAttach?: { status: number; code: string; message: string };
  close(): Promise<void>;
}

export function network(name: string, subnet = '10.89.7.0/24', gateway = '10.89.7.1'): NetworkInfo {
  return {
    name, id: 1, subnet, gateway, ipRange: subnet, mtu: 1500, default: false, created: new Date(0).toISOString(),
    internal: false, icc: true, dnsOrder: 'rotate', vlan: 0, portSecurity: true, gatewayMac: '02:00:00:00:00:01',
    hostPort: null, ports: [], endpoints: [],
  };
}

export async function startFakeDaemon(dir: string): Promise<FakeDaemon> {
  const sock = path.join(dir, `fake-${Math.random().toString(16).slice(2)}.sock`);
  const log: Logged[] = [];
  const networks = new Map<string, NetworkInfo>();
  const attachments = new Map<string, AttachmentInfo>();
  let nextHost = 10;
  const fake: FakeDaemon = { sock, log, networks, attachments, close: () => new Promise((r) => server.close(() => r())) };
  const answer = (res: http.ServerResponse, status: number, body?: unknown): void => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(body === undefined ? '' : JSON.stringify(body));
  };
  const err = (res: http.ServerResponse, status: number, code: string, message: string): void => answer(res, status, { error: { code, message } });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      const body = text ? JSON.parse(text) as Record<string, unknown> : undefined;
      const url = req.url ?? '/';
      log.push({ method: req.method ?? '', path: url, ...(body !== undefined ? { body } : {}) });
      const segs = url.split('?')[0].split('/').slice(1).map(decodeURIComponent);
      if (segs[0] === 'networks') {
        if (req.method === 'GET' && segs.length === 2) {
          const n = networks.get(segs[1]);
          return n ? answer(res, 200, n) : err(res, 404, 'E_NOT_FOUND', `no such network: ${segs[1]}`);
        }
        if (req.method === 'POST' && segs.length === 1) {
          const b = body as { name: string; subnet?: string; gateway?: string };
          if (networks.has(b.name)) return err(res, 409, 'E_CONFLICT', `network ${b.name} exists`);
          const n = network(b.name, b.subnet ?? '10.89.9.0/24', b.gateway ?? (b.subnet ? b.subnet.replace(/\.0\/\d+$/, '.1') : '10.89.9.1'));
          networks.set(b.name, n);
          return answer(res, 201, n);
        }
      }
      if (segs[0] === 'attachments') {
        if (req.method === 'POST' && segs.length === 1) {
          if (fake.failNextAttach) {
            const f = fake.failNextAttach;
            fake.failNextAttach = undefined;
            return err(res, f.status, f.code, f.message);
          }
          const b = body as unknown as AttachmentCreate;
          const net = networks.get(b.network);
          if (!net) return err(res, 404, 'E_NOT_FOUND', `no such network: ${b.network}`);
          const prefixLen = Number(net.subnet.split('/')[1]);
          const info: AttachmentInfo = {
            owner: b.owner, endpoint: b.endpoint, sandbox: b.sandbox, name: b.name, network: b.network,
            ip: b.ip ?? net.subnet.replace(/\.0\/\d+$/, `.${nextHost}`), prefixLen, gateway: net.gateway,
            mac: b.mac ?? '02:42:0a:59:07:0a', mtu: b.mtu ?? net.mtu, hostIf: 'vswab12cd34', innerIf: b.ifname ?? 'eth0',
            netns: b.netns, aliases: b.aliases ?? [], publish: b.publish ?? [],
          };
          const old = attachments.get(b.endpoint);
          if (old) {
            const same = old.network === b.network && (b.ip === undefined || old.ip === b.ip) && old.name === b.name;
            return same ? answer(res, 200, old) : err(res, 409, 'E_CONFLICT', `endpoint ${b.endpoint} exists with other settings`);
          }
          nextHost++;
          attachments.set(b.endpoint, info);
          return answer(res, 201, info);
        }
        if (segs.length === 2 && (req.method === 'GET' || req.method === 'DELETE')) {
          const a = attachments.get(segs[1]);
          if (!a) return err(res, 404, 'E_NOT_FOUND', `no attachment ${segs[1]}`);
          if (req.method === 'GET') return answer(res, 200, a);
          attachments.delete(segs[1]);
          res.writeHead(204);
          return res.end();
        }
      }
      return err(res, 404, 'E_NOT_FOUND', `no route ${req.method} ${url}`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(sock, () => resolve());
  });
  return fake;
}

/** A fake IPAM plugin: a shell script that logs each call (command, stdin) and answers ADD with `answer`. */
export function fakeIpam(dir: string, name: string, answer: { stdout: string; code?: number }): { calls(): string[]; stdinOf(cmd: string): string } {
  const logDir = fs.mkdtempSync(path.join(dir, 'ipam-log-'));
  fs.writeFileSync(path.join(logDir, 'answer'), answer.stdout);
  fs.writeFileSync(path.join(dir, name), `#!/bin/sh
cat > '${logDir}/'"$CNI_COMMAND".stdin
echo "$CNI_COMMAND $CNI_CONTAINERID $CNI_IFNAME" >> '${logDir}/calls'
if [ "$CNI_COMMAND" = ADD ]; then cat '${logDir}/answer'; exit ${answer.code ?? 0}; fi
exit 0
`, { mode: 0o755 });
  return {
    calls: () => { try { return fs.readFileSync(path.join(logDir, 'calls'), 'utf8').trim().split('\n').filter((l) => l); } catch { return []; } },
    stdinOf: (cmd) => fs.readFileSync(path.join(logDir, `${cmd}.stdin`), 'utf8'),
  };
}
