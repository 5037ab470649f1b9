// A lean S3 client for the gateway's two hot calls, GetObject and HeadObject: SigV4 (unsigned
// payload) signed with node:crypto over keep-alive node:http. The AWS SDK's middleware stack costs
// about a millisecond of CPU per call, which capped the origin at a few hundred small objects per
// second. It answers the SDK's shapes (`send(new GetObjectCommand(input), {abortSignal})` ->
// {Body, ContentLength, ETag, LastModified}; failures carry `$metadata.httpStatusCode` and
// `name: 'NoSuchKey'` for 404), so hls-route.ts works with either, and with fakes in tests.
import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import type { VoraConfig } from '../common/config.ts';

interface Cmd {
  constructor: { name: string };
  input: { Bucket?: string; Key?: string; Range?: string; IfMatch?: string; IfNoneMatch?: string; IfModifiedSince?: Date };
}

/** The HTTP status of a failed S3 call (this client's or the SDK's error shape). */
export const s3Status = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;

export interface OriginS3 {
  send(cmd: Cmd, opts?: { abortSignal?: AbortSignal }): Promise<any>;
  destroy(): void;
}

// RFC 3986 unreserved characters stay, everything else is %XX (S3's canonical URI, '/' kept).
const encodeKey = (key: string) =>
  key
    .split('/')
    .map((p) => encodeURIComponent(p).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join('/');

const sha256hex = (s: string) => createHash('sha256').update(s).digest('hex');
const hmac = (k: Buffer | string, s: string) => createHmac('sha256', k).update(s).digest();

export function createOriginS3(cfg: Pick<VoraConfig, 's3'>, opts: { maxSockets?: number } = {}): OriginS3 {
  const ep = new URL(cfg.s3.endpoint);
  const secure = ep.protocol === 'https:';
  const lib = secure ? https : http;
  const agent = new lib.Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 256, keepAliveMsecs: 1000 });
  const host = ep.host; // with the port when there is one
  const region = cfg.s3.region;
  let keyDate = '';
  let signingKey: Buffer = Buffer.alloc(0);

  function sign(method: string, path: string): Record<string, string> {
    const now = new Date();
    const amzDate = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, ''); // YYYYMMDDTHHMMSSZ
    const date = amzDate.slice(0, 8);
    if (date !== keyDate) {
      keyDate = date;
      signingKey = hmac(hmac(hmac(hmac(`AWS4${cfg.s3.secretAccessKey}`, date), region), 's3'), 'aws4_request');
    }
    const signed = 'host;x-amz-content-sha256;x-amz-date';
    const canonical = `${method}\n${path}\n\nhost:${host}\nx-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:${amzDate}\n\n${signed}\nUNSIGNED-PAYLOAD`;
    const scope = `${date}/${region}/s3/aws4_request`;
    const toSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${sha256hex(canonical)}`;
    const signature = createHmac('sha256', signingKey).update(toSign).digest('hex');
    return {
      'x-amz-date': amzDate,
      'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
      authorization: `AWS4-HMAC-SHA256 Credential=${cfg.s3.accessKeyId}/${scope}, SignedHeaders=${signed}, Signature=${signature}`,
    };
  }

  function send(cmd: Cmd, o: { abortSignal?: AbortSignal } = {}): Promise<any> {
    const name = cmd.constructor.name;
    const method = name === 'GetObjectCommand' ? 'GET' : name === 'HeadObjectCommand' ? 'HEAD' : null;
    if (!method) return Promise.reject(new Error(`origin S3 client: unsupported command ${name}`));
    const i = cmd.input;
    const path = `/${i.Bucket}/${encodeKey(i.Key ?? '')}`;
    const headers: Record<string, string> = sign(method, path);
    if (i.Range) headers.range = i.Range;
    if (i.IfMatch) headers['if-match'] = i.IfMatch;
    if (i.IfNoneMatch) headers['if-none-match'] = i.IfNoneMatch;
    if (i.IfModifiedSince) headers['if-modified-since'] = i.IfModifiedSince.toUTCString();
    return new Promise((resolve, reject) => {
      const req = lib.request({ host: ep.hostname, port: ep.port || (secure ? 443 : 80), path, method, headers, agent, signal: o.abortSignal }, (res) => {
        const status = res.statusCode ?? 0;
        const $metadata = { httpStatusCode: status };
        if (status >= 200 && status < 300) {
          const len = res.headers['content-length'];
          const lm = res.headers['last-modified'];
          if (method === 'HEAD') res.resume();
          return resolve({
            $metadata,
            Body: method === 'GET' ? (res as Readable) : undefined,
            ContentLength: len === undefined ? undefined : Number(len),
            ETag: res.headers.etag,
            LastModified: lm ? new Date(lm) : undefined,
            ContentRange: res.headers['content-range'],
          });
        }
        res.resume();
        const errName = status === 404 ? (method === 'HEAD' ? 'NotFound' : 'NoSuchKey') : status === 304 ? 'NotModified' : status === 412 ? 'PreconditionFailed' : `S3Error${status}`;
        reject(Object.assign(new Error(`${errName} (${status}) ${path}`), { name: errName, $metadata }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  return { send, destroy: () => agent.destroy() };
}
