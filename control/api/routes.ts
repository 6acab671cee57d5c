// The API's routes (docs/DESIGN.md, "API routes"): each request to its Engine method.
// handle() answers every failure itself (answer.ts).

import * as http from 'http';
import { pcapHeader, pcapRecord } from '../pcap';
import { InvalidArgumentError } from '../errors';
import { checkAliasesJson, checkPublishJson } from '../publish';
import { CAPTURE_DIRECTIONS, PORT_HEADER, type CaptureDirection, type CapturedLine, type Engine } from '../types';
import { methodNotAllowed, notFound, send, sendError } from './answer';
import {
  attachmentCreate, checkFields, compact, containerCreate, countParam, flag, networkCreate, optInt, optString, optStringArray, parseJsonObject, readBody,
  reqString, splitPath, trunkCreate, impairRequest,
} from './request';
import { serveEvents, serveInject, serveStream } from './stream';
import type { InjectSpec, InjectTiming } from '../inject';

/**
 * The bound of a capture --all-ports client (api/stream.ts): a recorded session's bursts
 * (every port, both directions, as hex) fit in it; past it frames are skipped and counted.
 */
export const CAPTURE_ALL_QUEUE_BYTES = 32 << 20;

/** Frames one dry-run trace request may carry. */
export const MAX_TRACE_FRAMES = 1000;

export async function handle(engine: Engine, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const method = req.method ?? 'GET';
  let pathname = '?';
  try {
    const url = new URL(req.url ?? '/', 'http://vsw');
    pathname = url.pathname;
    const segs = splitPath(pathname);
    const body = await readBody(req);
    const route = (allowed: string[]): void => {
      if (!allowed.includes(method)) throw methodNotAllowed(method, pathname, allowed);
    };
    const json = (): Record<string, unknown> => parseJsonObject(body);

    const [a, name, action, ...rest] = segs;
    if (rest.length > 0) throw notFound(pathname);

    if (a === 'info' && segs.length === 1) {
      route(['GET']);
      return send(res, 200, engine.info());
    }

    if (a === 'networks') {
      if (segs.length === 1) {
        route(['GET', 'POST']);
        if (method === 'GET') return send(res, 200, engine.listNetworks());
        return send(res, 201, await engine.createNetwork(networkCreate(json())));
      }
      if (segs.length === 2) {
        route(['GET', 'DELETE']);
        if (method === 'GET') return send(res, 200, engine.inspectNetwork(name));
        await engine.removeNetwork(name);
        return send(res, 204);
      }
      if (action === 'connect') {
        route(['POST']);
        const b = json();
        checkFields(b, ['container', 'ip', 'aliases']);
        const container = reqString(b, 'container');
        const opts = compact<{ ip?: string; aliases?: string[] }>({
          ip: optString(b, 'ip'),
          aliases: b.aliases === undefined || b.aliases === null ? undefined : checkAliasesJson(b.aliases),
        });
        return send(res, 200, await engine.connectWith(name, container, opts));
      }
      // VXLAN: POST /networks/NAME/peers {ip}; DELETE /networks/NAME/peers?ip=IP
      if (action === 'peers' && engine.vxlanPeer) {
        route(['POST', 'DELETE']);
        if (method === 'POST') {
          const b = json();
          checkFields(b, ['ip']);
          return send(res, 200, await engine.vxlanPeer(name, 'add', reqString(b, 'ip')));
        }
        return send(res, 200, await engine.vxlanPeer(name, 'rm', url.searchParams.get('ip') ?? ''));
      }
      if (action === 'disconnect') {
        route(['POST']);
        const b = json();
        checkFields(b, ['container']);
        await engine.disconnect(name, reqString(b, 'container'));
        return send(res, 204);
      }
      throw notFound(pathname);
    }

    if (a === 'containers') {
      if (segs.length === 1) {
        route(['GET', 'POST']);
        if (method === 'GET') return send(res, 200, engine.listContainers());
        return send(res, 201, await engine.createContainer(containerCreate(json())));
      }
      if (segs.length === 2) {
        route(['GET', 'DELETE']);
        if (method === 'GET') return send(res, 200, engine.inspectContainer(name));
        await engine.removeContainer(name, flag(url.searchParams.get('force'), 'force'));
        return send(res, 204);
      }
      if (action === 'exited') {
        route(['POST']);
        const b = json();
        checkFields(b, ['code']);
        const code = b.code;
        if (typeof code !== 'number' || !Number.isInteger(code) || code < 0 || code > 255) {
          throw new InvalidArgumentError("field 'code' must be an integer from 0 to 255");
        }
        await engine.containerExited(name, code);
        return send(res, 204);
      }
      throw notFound(pathname);
    }

    // Attachments: endpoints of sandboxes another runtime made (Docker, CNI).
    if (a === 'attachments') {
      if (segs.length === 1) {
        route(['GET', 'POST']);
        if (method === 'GET') return send(res, 200, engine.listAttachments());
        const r = await engine.createAttachment(attachmentCreate(json()));
        return send(res, r.created ? 201 : 200, r.attachment);
      }
      if (segs.length === 2) {
        route(['GET', 'DELETE']);
        if (method === 'GET') return send(res, 200, engine.inspectAttachment(name));
        await engine.removeAttachment(name);
        return send(res, 204);
      }
      if (action === 'publish') {
        route(['PUT']);
        const b = json();
        checkFields(b, ['publish']);
        if (b.publish === undefined || b.publish === null) throw new InvalidArgumentError("field 'publish' is required");
        return send(res, 200, await engine.publishAttachment(name, checkPublishJson(b.publish)));
      }
      throw notFound(pathname);
    }

    if (a === 'trunks') {
      if (segs.length === 1) {
        route(['GET', 'POST']);
        if (method === 'GET') return send(res, 200, engine.listTrunks());
        return send(res, 201, await engine.addTrunk(trunkCreate(json())));
      }
      if (segs.length === 2) {
        route(['DELETE']);
        await engine.removeTrunk(name);
        return send(res, 204);
      }
      throw notFound(pathname);
    }

    // VXLAN: POST /fdb {network, mac, vtep} (a static entry); DELETE /fdb?net=NAME&mac=MAC
    if (a === 'fdb' && segs.length === 1 && method === 'POST' && engine.fdbAdd) {
      const b = json();
      checkFields(b, ['network', 'mac', 'vtep', 'ip']);
      return send(res, 201, await engine.fdbAdd(reqString(b, 'network'), reqString(b, 'mac'), reqString(b, 'vtep'), optString(b, 'ip')));
    }
    if (a === 'fdb' && segs.length === 1 && method === 'DELETE' && engine.fdbRemove) {
      await engine.fdbRemove(url.searchParams.get('net') ?? '', url.searchParams.get('mac') ?? '');
      return send(res, 204);
    }
    if (a === 'fdb' && segs.length === 1) {
      route(['GET']);
      const netName = url.searchParams.get('net');
      return send(res, 200, engine.fdb(netName ? netName : undefined));
    }

    if (a === 'neigh' && segs.length === 1) {
      route(['GET']);
      const netName = url.searchParams.get('net');
      return send(res, 200, engine.neigh(netName ? netName : undefined));
    }

    if (a === 'conntrack' && segs.length === 1) {
      route(['GET']);
      return send(res, 200, engine.conntrack());
    }

    if (a === 'trace' && name === 'dry-run' && segs.length === 2) {
      route(['POST']);
      const b = json();
      checkFields(b, ['port', 'frames']);
      const frames = optStringArray(b, 'frames') ?? [];
      if (frames.length > MAX_TRACE_FRAMES) throw new InvalidArgumentError(`at most ${MAX_TRACE_FRAMES} frames per trace`);
      return send(res, 200, engine.traceDryRun(reqString(b, 'port'), frames));
    }

    if (a === 'events' && segs.length === 1) {
      route(['GET']);
      // Newline-delimited JSON, one event per line, until the client goes away (bounded: stream.ts).
      serveEvents(res, (fn) => engine.subscribeEvents(fn));
      return;
    }

    if (a === 'trace' && segs.length === 1) {
      route(['GET']);
      // Live trace: NDJSON, one TraceResult per frame, until `count` or the client goes away.
      const count = countParam(url);
      const opt = (k: string): string | undefined => url.searchParams.get(k) || undefined;
      await serveStream(res, 'trace', count,
        (emit) => engine.startTrace({ port: opt('port'), network: opt('net'), filter: opt('filter'), count },
          (r) => emit(`${JSON.stringify(r)}\n`)),
        () => ({ 'content-type': 'application/x-ndjson' }), '', { ndjson: true });
      return;
    }

    if (a === 'capture' && segs.length === 1) {
      route(['GET']);
      const opt = (k: string): string | undefined => url.searchParams.get(k) || undefined;
      if (flag(url.searchParams.get('all'), 'all')) {
        // Every port: NDJSON, one CapturedLine per frame (port, direction, time, hex).
        if (!engine.startCaptureAll) throw notFound(pathname);
        if (opt('port') || opt('stage') || opt('direction')) throw new InvalidArgumentError("'all' captures every port on the wire, both directions: no port, stage or direction");
        await serveStream(res, 'capture', countParam(url),
          (emit) => engine.startCaptureAll!((frame, timeMs, port, dir) =>
            emit(`${JSON.stringify({ port, dir, timeMs, frame: Buffer.from(frame).toString('hex') } satisfies CapturedLine)}\n`), { filter: opt('filter') }),
          () => ({ 'content-type': 'application/x-ndjson' }), '', { ndjson: true, queueBytes: CAPTURE_ALL_QUEUE_BYTES });
        return;
      }
      const port = url.searchParams.get('port');
      if (!port) throw new InvalidArgumentError("query parameter 'port' is required");
      const direction = opt('direction');
      if (direction !== undefined && !CAPTURE_DIRECTIONS.includes(direction as CaptureDirection)) {
        throw new InvalidArgumentError(`direction must be one of ${CAPTURE_DIRECTIONS.join(', ')}`);
      }
      await serveStream(res, 'capture', countParam(url),
        (emit) => engine.startCapture(port, (frame, timeMs) => emit(pcapRecord(frame, timeMs)),
          { stage: opt('stage'), filter: opt('filter'), direction: direction as CaptureDirection | undefined }),
        (session) => ({ 'content-type': 'application/vnd.tcpdump.pcap', [PORT_HEADER]: session.port }), pcapHeader());
      return;
    }

    // Link impairment: GET /impair; POST /impair {port, delay, ...}; DELETE /impair/PORT
    if (a === 'impair' && engine.impairSet && engine.impairRemove && engine.impairList) {
      if (segs.length === 1) {
        route(['GET', 'POST']);
        if (method === 'GET') return send(res, 200, engine.impairList());
        return send(res, 200, await engine.impairSet(impairRequest(json())));
      }
      if (segs.length === 2) {
        route(['DELETE']);
        await engine.impairRemove(name);
        return send(res, 204);
      }
      throw notFound(pathname);
    }

    if (a === 'snapshot' && segs.length === 1 && engine.snapshot) {
      route(['GET']);
      return send(res, 200, engine.snapshot());
    }

    if (a === 'inject' && segs.length === 1 && engine.inject) {
      route(['POST']);
      const b = json();
      checkFields(b, ['port', 'pcap', 'timing', 'rate', 'loop', 'filter']);
      const spec = compact<InjectSpec>({
        port: reqString(b, 'port'), pcap: reqString(b, 'pcap'), timing: (optString(b, 'timing') ?? 'original') as InjectTiming,
        rate: optInt(b, 'rate'), loop: optInt(b, 'loop'), filter: optString(b, 'filter'),
      });
      await serveInject(res, (progress, stopped) => engine.inject!(spec, progress, stopped));
      return;
    }

    if (a === 'stats' && segs.length === 1) {
      route(['GET']);
      return send(res, 200, engine.stats());
    }

    throw notFound(pathname);
  } catch (e) {
    sendError(req, res, method, pathname, e);
  }
}
