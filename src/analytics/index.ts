// Public surface of analytics for other modules (API: videoAnalytics; supervisor: schema).
export { EventBuffer, type BufferCounters, type Sink, type Batch } from './buffer.ts';
export {
  clickhouseSink,
  closeDefaultClickhouse,
  createClickhouse,
  ensureClickhouseSchema,
  videoAnalytics,
  type VideoAnalytics,
} from './clickhouse.ts';
export { parseEventBatch, EVENT_TYPES, type PlaybackEvent, type EventType } from './events.ts';
