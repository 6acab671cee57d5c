// The line reader of the CLI's NDJSON streams: chunks may end anywhere, also inside a
// UTF-8 character.
import { PassThrough } from 'stream';
import { describe, expect, it } from 'vitest';
import { LineReader, readLines } from '../../control/lines';

describe('LineReader', () => {
  it('keeps a multi-byte character whole when a chunk ends inside it', () => {
    const bytes = Buffer.from('{"cmd":"echo ✓ é"}\n');
    const lines: string[] = [];
    const r = new LineReader((l) => lines.push(l));
    const cut = bytes.indexOf(0xe2) + 1; // inside the 3-byte check mark
    r.push(bytes.subarray(0, cut));
    expect(lines).toEqual([]);
    r.push(bytes.subarray(cut));
    expect(lines).toEqual(['{"cmd":"echo ✓ é"}']);
  });

  it('one byte at a time, several lines, empty lines skipped, a cut last line held back', () => {
    const bytes = Buffer.from('a€\n\nb😀c\nrest');
    const lines: string[] = [];
    const r = new LineReader((l) => lines.push(l));
    for (let i = 0; i < bytes.length; i++) r.push(bytes.subarray(i, i + 1));
    expect(lines).toEqual(['a€', 'b😀c']);
  });

  it('readLines reads a stream', async () => {
    const s = new PassThrough();
    const lines: string[] = [];
    readLines(s, (l) => lines.push(l));
    const b = Buffer.from('x→y\n');
    s.write(b.subarray(0, 2));
    s.end(b.subarray(2));
    await new Promise((r) => s.on('end', r));
    expect(lines).toEqual(['x→y']);
  });
});
