// Load generator for the streaming gateway or the playback entry (Varnish): N keep-alive clients
// fetch one URL in a loop for D seconds and report requests/s, MB/s and latency percentiles.
//   node --import tsx bench/gateway-bench.ts <url> [-c 32] [-d 10] [--events]
// --events POSTs 100-event batches to <url> (e.g. http://127.0.0.1:8081/v1/events) instead.
import http from 'node:http';

const args = process.argv.slice(2);
const url = args.find((a) => a.startsWith('http'));
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
if (!url) {
  console.error('usage: bench/gateway-bench.ts <url> [-c connections] [-d seconds] [--events]');
  process.exit(2);
}
const conns = opt('-c', 32);
const seconds = opt('-d', 10);
const events = args.includes('--events');
const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
const target = new URL(url);

function batch(): string {
  const now = Date.now();
  return JSON.stringify(
    Array.from({ length: 100 }, (_, i) => ({
      videoId: 'vid_benchaaaaaaaaaaaaaaa',
      sessionId: `bench-${i % 10}`,
      type: 'segment_fetched',
      ts: now,
      segment: i,
      bandwidth: 800000,
    })),
  );
}

function once(): Promise<{ status: number; bytes: number; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const body = events ? batch() : undefined;
    const req = http.request(
      { host: target.hostname, port: target.port, path: target.pathname + target.search, method: events ? 'POST' : 'GET', agent, headers: body ? { 'Content-Type': 'application/json' } : {} },
      (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, ms: performance.now() - t0 }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const lat: number[] = [];
let bytes = 0;
let errors = 0;
const statuses = new Map<number, number>();
const until = Date.now() + seconds * 1000;
const t0 = performance.now();
await Promise.all(
  Array.from({ length: conns }, async () => {
    while (Date.now() < until) {
      try {
        const r = await once();
        lat.push(r.ms);
        bytes += r.bytes;
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      } catch {
        errors++;
      }
    }
  }),
);
const secs = (performance.now() - t0) / 1000;
lat.sort((a, b) => a - b);
const pct = (p: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))]!.toFixed(1) : '-');
console.log(
  JSON.stringify(
    {
      url,
      connections: conns,
      seconds: Number(secs.toFixed(1)),
      requests: lat.length,
      reqPerSec: Math.round(lat.length / secs),
      mbPerSec: Number((bytes / secs / 1e6).toFixed(1)),
      latencyMs: { p50: pct(50), p90: pct(90), p99: pct(99), max: pct(100) },
      statuses: Object.fromEntries(statuses),
      errors,
    },
    null,
    2,
  ),
);
agent.destroy();
