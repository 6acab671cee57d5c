// The daemon's HTTP/JSON API on a Unix socket: routes -> Engine (see docs/DESIGN.md,
// "API routes"). A bad request never crashes the daemon: every failure becomes an error
// answer { error: { code, message } } with the VswError's status (500 for anything else).
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as path from 'path';
import { ConflictError, SystemError } from '../errors';
import type { Engine } from '../types';
import { logInternal } from './answer';
import { handle } from './routes';

export { MAX_BODY_BYTES } from './request';
export { MAX_TRACE_FRAMES } from './routes';
export { STREAM_QUEUE_BYTES, streamSkipped } from './stream';

export interface ApiServer {
  /** Stop accepting, finish (or after a grace period cut) open requests, remove the socket. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------
// Socket setup

export async function startApi(engine: Engine, socketPath: string): Promise<ApiServer> {
  const server = http.createServer((req, res) => {
    handle(engine, req, res).catch((e) => {
      // handle() answers every error itself; this is the last line of defence.
      logInternal(req, e);
      try { res.destroy(); } catch { /* ignore */ }
    });
  });
  server.on('clientError', (err, socket) => {
    // Malformed HTTP: answer 400 if we still can; never let it reach 'error'.
    if (socket.writable && (err as NodeJS.ErrnoException).code !== 'ECONNRESET') {
      const body = JSON.stringify({ error: { code: 'E_INVALID_ARGUMENT', message: 'malformed HTTP request' } });
      socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    } else {
      socket.destroy();
    }
  });
  return listenUnix(server, socketPath, { what: 'the API socket', owner: 'a vsw daemon' });
}

/**
 * Serve `server` on a root-only Unix socket (the API's, the Docker plugin's): its directory
 * made 0700 when absent, a socket file left by a process that died replaced (a live one is
 * a ConflictError naming `owner`), the socket 0600, and removed at close() if it is still
 * ours. `what` names the socket in errors.
 */
export async function listenUnix(server: http.Server, socketPath: string, names: { what: string; owner: string }): Promise<ApiServer> {
  const dir = path.dirname(socketPath);
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new SystemError(`cannot create the directory of ${names.what} ${dir}: ${(e as Error).message}`);
  }
  await removeStaleSocket(socketPath, names);
  await listen(server, socketPath, names.what);
  let ino: number | undefined;
  try {
    fs.chmodSync(socketPath, 0o600);
    ino = fs.statSync(socketPath).ino;
  } catch (e) {
    await new Promise<void>((r) => server.close(() => r()));
    throw new SystemError(`cannot secure ${names.what} ${socketPath}: ${(e as Error).message}`);
  }

  let closing: Promise<void> | undefined;
  return {
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        const grace = setTimeout(() => server.closeAllConnections(), 2000);
        grace.unref();
        server.close(() => {
          clearTimeout(grace);
          // Remove the socket file only if it is still ours (not replaced by another daemon).
          try {
            if (ino !== undefined && fs.statSync(socketPath).ino === ino) fs.unlinkSync(socketPath);
          } catch { /* already gone */ }
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

function listen(server: http.Server, socketPath: string, what: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      reject(e.code === 'EADDRINUSE'
        ? new ConflictError(`${what} ${socketPath} is already in use`)
        : new SystemError(`cannot listen on ${what} ${socketPath}: ${e.message}`));
    };
    server.once('error', onError);
    // The socket is created by bind() inside listen(): a restrictive umask closes the window
    // before the chmod below (umask cannot be changed in worker threads: then rely on chmod).
    let oldMask: number | undefined;
    try { oldMask = process.umask(0o177); } catch { /* worker thread */ }
    try {
      server.listen(socketPath, () => {
        server.off('error', onError);
        server.on('error', (e) => console.error(`vsw api: server error: ${e.message}`));
        resolve();
      });
    } finally {
      if (oldMask !== undefined) process.umask(oldMask);
    }
  });
}

/** A socket file left by a daemon that died is removed; a live one is a conflict. */
async function removeStaleSocket(socketPath: string, names: { what: string; owner: string }): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(socketPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new SystemError(`cannot check ${names.what} ${socketPath}: ${(e as Error).message}`);
  }
  if (!st.isSocket()) {
    throw new ConflictError(`${socketPath} exists and is not a socket; remove it or choose another path for ${names.what}`);
  }
  const alive = await new Promise<boolean>((resolve) => {
    const s = net.connect(socketPath);
    const done = (v: boolean): void => { s.destroy(); resolve(v); };
    s.setTimeout(1000, () => done(true)); // something holds it but is slow: treat as alive
    s.once('connect', () => done(true));
    s.once('error', (e: NodeJS.ErrnoException) => done(e.code !== 'ECONNREFUSED' && e.code !== 'ENOENT'));
  });
  if (alive) throw new ConflictError(`${names.owner} is already listening on ${socketPath}`);
  try {
    fs.unlinkSync(socketPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new SystemError(`cannot remove the stale ${names.what.replace(/^the /, '')} ${socketPath}: ${(e as Error).message}`);
    }
  }
}
