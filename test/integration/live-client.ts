// A minimal RFC 6455 WebSocket client for tests (Node 20 has no WebSocket without a flag and the
// project has no ws package): text frames, masked, no extensions; pings are answered.
import { randomBytes } from 'node:crypto';
import net from 'node:net';

export interface LiveClient {
  send(obj: unknown): void;
  sendRaw(text: string): void;
  /** Next message (JSON-parsed) matching pred, waiting up to timeoutMs. */
  next<T = any>(pred?: (m: any) => boolean, timeoutMs?: number): Promise<T>;
  /** Every message received so far (JSON-parsed), in order. */
  readonly messages: any[];
  close(): void;
  readonly closed: Promise<void>;
}

export function connectLive(url: string): Promise<LiveClient> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: u.hostname, port: Number(u.port) });
    const key = randomBytes(16).toString('base64');
    let buf = Buffer.alloc(0);
    let upgraded = false;
    const messages: any[] = [];
    let consumed = 0; // messages handed out by next()
    const waiters: { pred: (m: any) => boolean; resolve: (m: any) => void }[] = [];
    let closeResolve!: () => void;
    const closed = new Promise<void>((r) => (closeResolve = r));

    const frame = (opcode: number, payload: Buffer) => {
      const mask = randomBytes(4);
      const len = payload.length;
      const head = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len]) : Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 255]);
      const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
      sock.write(Buffer.concat([head, mask, body]));
    };
    const deliver = (m: any) => {
      messages.push(m);
      const i = waiters.findIndex((w) => w.pred(m));
      if (i >= 0) waiters.splice(i, 1)[0]!.resolve(m);
    };
    const parse = () => {
      for (;;) {
        if (buf.length < 2) return;
        const opcode = buf[0]! & 15;
        let len = buf[1]! & 127;
        let off = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          off = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(buf.readBigUInt64BE(2));
          off = 10;
        }
        if (buf.length < off + len) return;
        const payload = buf.subarray(off, off + len);
        buf = buf.subarray(off + len);
        if (opcode === 1) deliver(JSON.parse(payload.toString('utf8')));
        else if (opcode === 9) frame(10, Buffer.from(payload));
        else if (opcode === 8) sock.end();
      }
    };
    sock.on('connect', () => {
      sock.write(
        `GET ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString();
        buf = buf.subarray(end + 4);
        if (!/^HTTP\/1\.1 101/.test(head)) {
          reject(new Error(`no upgrade: ${head.split('\r\n')[0]}`));
          sock.destroy();
          return;
        }
        upgraded = true;
        resolve(client);
      }
      parse();
    });
    sock.on('error', (e) => (upgraded ? undefined : reject(e)));
    sock.on('close', () => closeResolve());

    const client: LiveClient = {
      messages,
      closed,
      send: (obj) => frame(1, Buffer.from(JSON.stringify(obj))),
      sendRaw: (text) => frame(1, Buffer.from(text)),
      next(pred = () => true, timeoutMs = 10_000) {
        // Messages already received but not yet handed out are matched first, in order.
        for (let i = consumed; i < messages.length; i++) {
          if (pred(messages[i])) {
            consumed = i + 1;
            return Promise.resolve(messages[i]);
          }
        }
        return new Promise((res, rej) => {
          const t = setTimeout(() => rej(new Error(`no matching live message in ${timeoutMs} ms; got ${JSON.stringify(messages.slice(consumed))}`)), timeoutMs);
          waiters.push({
            pred,
            resolve: (m) => {
              clearTimeout(t);
              consumed = messages.length;
              res(m);
            },
          });
        });
      },
      close: () => {
        try {
          frame(8, Buffer.alloc(0));
        } catch {
          /* already gone */
        }
        sock.end();
      },
    };
  });
}
