// Lines of a byte stream (the daemon's NDJSON streams: events, live traces). Chunks end
// anywhere, also inside a UTF-8 character (an event with a non-ASCII command): bytes are
// decoded with a StringDecoder, which holds an incomplete character back for the next chunk.

import { StringDecoder } from 'node:string_decoder';

/** Feeds each complete, non-empty line (without its '\n') to onLine; a last line without
 *  a '\n' is not a record (the stream was cut) and is never handed on. */
export class LineReader {
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer): void {
    this.pending += this.decoder.write(chunk);
    let nl: number;
    while ((nl = this.pending.indexOf('\n')) >= 0) {
      const line = this.pending.slice(0, nl);
      this.pending = this.pending.slice(nl + 1);
      if (line !== '') this.onLine(line);
    }
  }
}

/** Hand every line of a stream to onLine as it arrives. */
export function readLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  const reader = new LineReader(onLine);
  stream.on('data', (d: Buffer) => reader.push(d));
}
