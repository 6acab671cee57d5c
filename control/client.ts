// HTTP/JSON client of the daemon's API over its Unix socket (used by the CLI and the tests).
// Non-2xx answers are rethrown as the VswError the daemon sent; a daemon that cannot be
// reached becomes a DaemonUnreachableError with a message that says what to do.

import * as http from 'http';
import { DaemonUnreachableError, errorFromJson, VswError } from './errors';
import type { AttachmentCreate, AttachmentInfo, PortMapping } from './types';

export const DEFAULT_SOCKET = '/run/vsw/vsw.sock';

/** Container creation can take a few seconds (namespaces, veths); give it plenty. */
const DEFAULT_TIMEOUT_MS = 60_000;

export function unreachableMessage(socketPath: string): string {
  return `cannot reach the vsw daemon at ${socketPath} (is \`vsw daemon\` running? set --socket or VSW_SOCKET)`;
}

export class Client {
  readonly socketPath: string;
  private readonly timeoutMs: number;

  constructor(socketPath: string, opts: { timeoutMs?: number } = {}) {
    this.socketPath = socketPath;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  get<T>(path: string): Promise<T> {
    return this.request('GET', path) as Promise<T>;
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request('POST', path, body ?? {}) as Promise<T>;
  }

  async del(path: string): Promise<void> {
    await this.request('DELETE', path);
  }

  put<T>(path: string, body?: unknown): Promise<T> {
    return this.request('PUT', path, body ?? {}) as Promise<T>;
  }

  // Attachments (docs/DESIGN.md "Attachments"): the runtimes' plugins use these.

  listAttachments(): Promise<AttachmentInfo[]> {
    return this.get<AttachmentInfo[]>('/attachments');
  }

  /** The attachment, or undefined when the daemon does not know it. */
  async attachment(endpoint: string): Promise<AttachmentInfo | undefined> {
    try {
      return await this.get<AttachmentInfo>(`/attachments/${encodeURIComponent(endpoint)}`);
    } catch (e) {
      if (e instanceof VswError && e.code === 'E_NOT_FOUND') return undefined;
      throw e;
    }
  }

  /** Make it (or get the same one back: idempotent for the same fields). */
  attach(spec: AttachmentCreate): Promise<AttachmentInfo> {
    return this.post<AttachmentInfo>('/attachments', spec);
  }

  /** Remove it; false when it was not there (already removed: as good as done). */
  async detach(endpoint: string): Promise<boolean> {
    try {
      await this.del(`/attachments/${encodeURIComponent(endpoint)}`);
      return true;
    } catch (e) {
      if (e instanceof VswError && e.code === 'E_NOT_FOUND') return false;
      throw e;
    }
  }

  /** Replace its published ports. */
  publishAttachment(endpoint: string, publish: PortMapping[]): Promise<AttachmentInfo> {
    return this.put<AttachmentInfo>(`/attachments/${encodeURIComponent(endpoint)}/publish`, { publish });
  }

  /** One request; resolves with the parsed JSON answer (undefined for an empty body). */
  request(method: string, path: string, body?: unknown): Promise<unknown> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<unknown>((resolve, reject) => {
      let settled = false;
      const fail = (e: Error): void => {
        if (!settled) { settled = true; reject(e); }
      };
      const headers: http.OutgoingHttpHeaders = { Accept: 'application/json' };
      if (payload) {
        headers['Content-Type'] = 'application/json';
        headers['Content-Length'] = payload.length;
      }
      // agent: false -> one connection per request, nothing kept alive to hold the CLI open.
      const req = http.request({ socketPath: this.socketPath, path, method, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => fail(this.transportError(e)));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          const status = res.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          let parseError = false;
          if (text.length > 0) {
            try { parsed = JSON.parse(text); } catch { parseError = true; }
          }
          if (status < 200 || status >= 300) {
            reject(errorFromJson(status, parsed));
          } else if (parseError) {
            reject(new VswError(`the vsw daemon sent an invalid JSON answer to ${method} ${path}`));
          } else {
            resolve(parsed);
          }
        });
      });
      req.setTimeout(this.timeoutMs, () => {
        fail(new DaemonUnreachableError(
          `the vsw daemon at ${this.socketPath} did not answer ${method} ${path} within ${Math.round(this.timeoutMs / 1000)} s`,
        ));
        req.destroy();
      });
      req.on('error', (e) => fail(this.transportError(e)));
      req.end(payload);
    });
  }

  private transportError(e: Error): VswError {
    const code = (e as NodeJS.ErrnoException).code;
    const base = unreachableMessage(this.socketPath);
    switch (code) {
      case 'ENOENT':
      case 'ECONNREFUSED':
      case 'ENOTSOCK':
        return new DaemonUnreachableError(base);
      case 'EACCES':
      case 'EPERM':
        return new DaemonUnreachableError(`${base}: permission denied (the API socket is root-only)`);
      default:
        return new DaemonUnreachableError(`${base}: ${e.message}`);
    }
  }
}
