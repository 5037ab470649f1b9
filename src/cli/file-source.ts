// A tus-js-client file reader for files on disk whose PATCH bodies read the file in 1 MiB pieces.
// tus-js-client's own reader opens every slice with fs's default 64 KiB reads, and each piece then
// costs a read, a pass through its progress transform and a socket write: 16 of each per MiB. With
// 1 MiB pieces the client spends less CPU per byte, which on a host the API and MinIO share is CPU
// they get (bench/upload.ts).
import fs from 'node:fs';
import type { UploadOptions } from 'tus-js-client';

type FileReader = NonNullable<UploadOptions['fileReader']>;

export const READ_PIECE_BYTES = 1024 * 1024;

export function largeReadFileReader(pieceBytes = READ_PIECE_BYTES): FileReader {
  return {
    async openFile(input: unknown) {
      if (!(input instanceof fs.ReadStream) || input.path == null) {
        throw new Error('largeReadFileReader reads files: pass fs.createReadStream(path)');
      }
      const file = input.path.toString();
      // Only its path is used; the stream itself is never read.
      input.destroy();
      const { size } = await fs.promises.stat(file);
      return {
        size,
        slice(start: number, end: number) {
          const last = Math.min(end, size);
          // `end` of createReadStream is inclusive; an empty slice still needs a (finished) stream.
          const value = fs.createReadStream(file, { start, end: Math.max(start, last) - 1, highWaterMark: pieceBytes });
          Object.assign(value, { size: last - start });
          return Promise.resolve({ value, done: last >= size });
        },
        close() {},
      };
    },
  };
}
