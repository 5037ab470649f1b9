// Prometheus metrics for Vora's services (prom-client). Each service makes one registry with
// createMetrics(service): the default process metrics (CPU, memory, event loop lag, GC, handles)
// plus whatever the service registers on it, every series labelled service="<name>". The service
// answers GET /metrics with `await m.registry.metrics()` and `m.contentType`.
import client from 'prom-client';

export interface Metrics {
  service: string;
  registry: client.Registry;
  contentType: string;
  /** The exposition text (what GET /metrics answers). */
  metrics(): Promise<string>;
}

export function createMetrics(service: string, opts: { defaultMetrics?: boolean; prefix?: string } = {}): Metrics {
  const registry = new client.Registry();
  registry.setDefaultLabels({ service });
  if (opts.defaultMetrics !== false) client.collectDefaultMetrics({ register: registry, prefix: opts.prefix ?? 'vora_' });
  return { service, registry, contentType: registry.contentType, metrics: () => registry.metrics() };
}

export { client as prom };
