import { randomBytes } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

function base32(bytes: Buffer): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

export const newVideoId = () => `vid_${base32(randomBytes(13)).slice(0, 20)}`;
export const newUploadId = () => `upl_${base32(randomBytes(13)).slice(0, 20)}`;
export const workflowIdFor = (videoId: string) => `video-${videoId}`;
