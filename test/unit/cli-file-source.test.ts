import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { largeReadFileReader } from '../../src/cli/file-source.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vora-file-source-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function read(stream: NodeJS.ReadableStream): Promise<{ bytes: Buffer; pieces: number[] }> {
  const pieces: number[] = [];
  const parts: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) {
    pieces.push(c.length);
    parts.push(c);
  }
  return { bytes: Buffer.concat(parts), pieces };
}

describe('largeReadFileReader (the CLI reads upload bodies in large pieces)', () => {
  const data = randomBytes(3 * 1024 * 1024 + 12345);
  const file = path.join(dir, 'f.bin');
  fs.writeFileSync(file, data);

  it('slices are exactly the requested byte ranges, read in 1 MiB pieces', async () => {
    const src = await largeReadFileReader().openFile(fs.createReadStream(file), 0);
    expect(src.size).toBe(data.length);
    const mid = await src.slice(1000, 1000 + 2 * 1024 * 1024 + 7);
    expect(mid.done).toBe(false);
    const got = await read(mid.value);
    expect(got.bytes.equals(data.subarray(1000, 1000 + 2 * 1024 * 1024 + 7))).toBe(true);
    expect(Math.max(...got.pieces)).toBe(1024 * 1024);
    // The last slice may ask past the end (tus does with chunkSize > what is left): it stops at the end.
    const tail = await src.slice(data.length - 10, data.length + 5000);
    expect(tail.done).toBe(true);
    expect((await read(tail.value)).bytes.equals(data.subarray(data.length - 10))).toBe(true);
    src.close();
  });

  it('refuses what is not a file stream', async () => {
    await expect(largeReadFileReader().openFile(Buffer.from('x'), 0)).rejects.toThrow(/reads files/);
  });
});
