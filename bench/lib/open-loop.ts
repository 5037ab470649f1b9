// Open-loop load at a fixed rate, for latency under a given load (bench/delivery.ts (c)).
// autocannon's -R sends each second's quota as fast as it can and then idles (a burst per second),
// so its latencies are those of saturation. Here request i is due at start + i/rate whatever
// happened before, and its latency counts from when it was due, so a stall of the server also
// delays (and is charged to) the requests scheduled behind it: no coordinated omission.
//   node --import tsx bench/lib/open-loop.ts URL BODY_FILE RATE DURATION_SEC CONNECTIONS
// Prints one JSON line: { sent, ok, failed, perSec, p50, p90, p99, p999, max, clientLoopDelayP99,
// clientLoopDelayMax } (milliseconds).
import fs from 'node:fs';
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const [url, bodyFile, rateArg, durArg, connArg] = process.argv.slice(2);
if (!url || !bodyFile) throw new Error('usage: open-loop.ts URL BODY_FILE RATE DURATION_SEC CONNECTIONS');
const rate = Number(rateArg ?? 1000);
const duration = Number(durArg ?? 8);
const body = fs.readFileSync(bodyFile);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(connArg ?? 8) });
const target = new URL(url);
const total = Math.round(rate * duration);
const latencies: number[] = [];
let ok = 0;
let failed = 0;
let done = 0;

function send(due: number): void {
  const req = http.request(
    { host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } },
    (res) => {
      res.resume();
      res.on('end', () => {
        latencies.push(performance.now() - due);
        if (res.statusCode === 202) ok++;
        else failed++;
        done++;
      });
    },
  );
  req.on('error', () => {
    failed++;
    done++;
  });
  req.end(body);
}

// This process's own stalls delay sends and answers alike and are charged to the server: printed
// so a latency figure can be told apart from the generator's.
const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();
const start = performance.now() + 50;
let next = 0;
await new Promise<void>((resolve) => {
  const tick = () => {
    const now = performance.now();
    while (next < total && start + (next * 1000) / rate <= now) send(start + (next++ * 1000) / rate);
    if (next < total) setTimeout(tick, 0.5);
    else resolve();
  };
  setTimeout(tick, 50);
});
while (done < total) await new Promise((r) => setTimeout(r, 5));
const elapsed = (performance.now() - start) / 1000;
latencies.sort((a, b) => a - b);
const q = (p: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]! * 100) / 100;
loop.disable();
const ms = (ns: number) => Math.round(ns / 1e4) / 100;
console.log(JSON.stringify({ sent: total, ok, failed, perSec: Math.round(ok / elapsed), p50: q(0.5), p90: q(0.9), p99: q(0.99), p999: q(0.999), max: q(1 - 1e-12), clientLoopDelayP99: ms(loop.percentile(99)), clientLoopDelayMax: ms(loop.max) }));
agent.destroy();
