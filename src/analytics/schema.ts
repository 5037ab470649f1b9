// Entry point the stack supervisor imports after ClickHouse is up (src/stack/servers.ts).
export { ensureClickhouseSchema, splitSql } from './clickhouse.ts';
