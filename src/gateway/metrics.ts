// The gateway's Prometheus series on its registry: requests and body bytes per route, origin fetch
// latency, and gauges/counters read at scrape time from the object cache, event buffer and live hub.
import type { HttpResponse } from 'uWebSockets.js';
import { prom, type Metrics } from '../common/metrics.ts';
import type { EventBuffer } from '../analytics/buffer.ts';
import type { LiveHub } from './live.ts';
import type { ObjectCache } from './object-cache.ts';
import { newCtx, type Ctx } from './respond.ts';
import { s3Status } from './origin-s3.ts';

export interface MetricSources {
  objects: () => ReturnType<ObjectCache['stats']>;
  buffer: () => Partial<ReturnType<EventBuffer['stats']>>;
  live: () => ReturnType<LiveHub['stats']> | null;
}

export function gatewayMetrics(metrics: Metrics, src: MetricSources) {
  const registers = [metrics.registry];
  const requests = new prom.Counter({
    name: 'vora_gateway_http_requests_total',
    help: 'HTTP responses by route (hls_playlist, hls_segment, hls_other, events, metrics) and status',
    labelNames: ['route', 'status'],
    registers,
  });
  const bytes = new prom.Counter({ name: 'vora_gateway_response_body_bytes_total', help: 'Response body bytes sent, by route', labelNames: ['route'], registers });
  const originFetch = new prom.Histogram({
    name: 'vora_gateway_origin_fetch_seconds',
    help: 'Object storage (MinIO/S3) request latency until response headers, by operation and outcome',
    labelNames: ['op', 'outcome'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });

  /** A counter that follows a component's own running total (increased by the difference at scrape). */
  const mirror = (name: string, help: string, outcomes: Record<string, string>, read: () => Record<string, number | undefined>) => {
    const seen: Record<string, number> = {};
    new prom.Counter({
      name,
      help,
      labelNames: ['outcome'],
      registers,
      collect() {
        const now = read();
        for (const [field, outcome] of Object.entries(outcomes)) {
          const v = Number(now[field] ?? 0);
          this.inc({ outcome }, Math.max(0, v - (seen[field] ?? 0)));
          seen[field] = Math.max(v, seen[field] ?? 0);
        }
      },
    });
  };
  const gauge = (name: string, help: string, read: () => number) =>
    new prom.Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });

  mirror('vora_gateway_object_cache_lookups_total', 'Hot-object cache lookups of cacheable /hls/ objects, by outcome (hit, miss)', { hits: 'hit', misses: 'miss' }, src.objects);
  gauge('vora_gateway_object_cache_bytes', 'Bytes of object bodies held by the hot-object cache', () => src.objects().bytes);
  const outcomes = ['accepted', 'flushed', 'spilled', 'replayed', 'dropped'];
  mirror(
    'vora_events_total',
    'Playback events by outcome: accepted (202), flushed (stored in ClickHouse), spilled (to the disk spool), replayed (from the spool), dropped (spool full)',
    Object.fromEntries(outcomes.map((k) => [k, k])),
    src.buffer as () => Record<string, number | undefined>,
  );
  gauge('vora_events_buffered', 'Events held in memory waiting for ClickHouse', () => Number(src.buffer().buffered ?? 0));
  gauge('vora_events_spool_bytes', 'Bytes of events spooled to disk while ClickHouse is unavailable', () => Number(src.buffer().spoolBytes ?? 0));
  gauge('vora_live_sockets', 'Open /v1/live WebSockets', () => src.live()?.sockets ?? 0);
  gauge('vora_live_subscriptions', 'Video subscriptions over all /v1/live WebSockets', () => src.live()?.subscriptions ?? 0);

  return {
    /** A Ctx (onAborted registered at once) whose response is counted per route and status. */
    track(res: HttpResponse, route: string, head = false): Ctx {
      const ctx = newCtx(res, head);
      ctx.obs = {
        status: (status) => requests.inc({ route, status: String(status) }),
        bytes: (n) => bytes.inc({ route }, n),
      };
      return ctx;
    },
    /** Times one object-storage call (until its response headers) for the origin latency histogram. */
    async timed<T>(op: string, p: Promise<T>): Promise<T> {
      const end = originFetch.startTimer({ op });
      try {
        const r = await p;
        end({ outcome: 'ok' });
        return r;
      } catch (err) {
        const st = s3Status(err);
        end({ outcome: st === 304 ? 'not_modified' : st === 404 ? 'not_found' : 'error' });
        throw err;
      }
    },
  };
}
