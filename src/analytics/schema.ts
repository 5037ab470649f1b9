// ClickHouse schema set-up: clickhouse/*.sql applied on every start, plus the columns an older
// table lacks. The supervisor (src/stack/servers.ts) and docker/init.ts run it once ClickHouse is up.
import fs from 'node:fs';
import path from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { REPO_ROOT, type VoraConfig } from '../common/config.ts';
import { EVENTS_TABLE, createClickhouse, quoteIdent, quoteString } from './clickhouse.ts';

/** Splits a .sql file into statements: `--` comments removed, then split on ';'. */
export function splitSql(sql: string): string[] {
  return sql
    .split('\n')
    .map((l) => l.replace(/--.*$/, ''))
    .join('\n')
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * Applies clickhouse/*.sql in name order. Every statement is written to be idempotent
 * (IF NOT EXISTS), so this runs on every start; the supervisor calls it once ClickHouse is up.
 */
export async function ensureClickhouseSchema(
  cfg: VoraConfig,
  opts: { dir?: string; client?: ClickHouseClient } = {},
): Promise<string[]> {
  const dir = opts.dir ?? path.join(REPO_ROOT, 'clickhouse');
  const client = opts.client ?? createClickhouse(cfg);
  const applied: string[] = [];
  try {
    for (const name of fs.readdirSync(dir).filter((f) => f.endsWith('.sql')).sort()) {
      const sql = fs.readFileSync(path.join(dir, name), 'utf8');
      for (const stmt of splitSql(sql)) {
        // The schema files name the database "vora"; a different configured name is substituted.
        await client.command({ query: renameDb(stmt, cfg.clickhouse.database) });
      }
      applied.push(name);
    }
    await addMissingColumns(client, cfg.clickhouse.database);
  } finally {
    if (!opts.client) await client.close();
  }
  return applied;
}

/** Columns the writer sends (EventRow), with their types in clickhouse/001_events.sql. */
const EVENT_COLUMNS: [string, string][] = [
  ['event_date', 'Date'],
  ['ts', 'DateTime'],
  ['ts_ms', 'UInt16 DEFAULT 0'],
  ['received_at', 'DateTime'],
  ['video_id', 'String'],
  ['session_id', 'String'],
  ['type', 'String'],
  ['segment', 'Nullable(Int32)'],
  ['bandwidth', 'Nullable(UInt32)'],
  ['watch_time_sec', 'Nullable(Float64)'],
  ['position_sec', 'Nullable(Float64)'],
  ['batch_id', 'String'],
  ['event_id', 'String'],
];

/**
 * A table created by an older schema file survives CREATE TABLE IF NOT EXISTS; without the newer
 * columns every insert would be refused. Missing columns are added (the engine cannot be changed
 * in place: such a table keeps working, only without the ReplacingMergeTree de-duplication).
 */
async function addMissingColumns(client: ClickHouseClient, db: string): Promise<string[]> {
  const rs = await client.query({
    query: `SELECT name FROM system.columns WHERE database = ${quoteString(db)} AND table = ${quoteString(EVENTS_TABLE)}`,
    format: 'JSONEachRow',
  });
  const have = new Set((await rs.json<{ name: string }>()).map((r) => r.name));
  const added: string[] = [];
  for (const [name, type] of EVENT_COLUMNS) {
    if (have.has(name)) continue;
    await client.command({ query: `ALTER TABLE ${quoteIdent(db)}.${quoteIdent(EVENTS_TABLE)} ADD COLUMN ${quoteIdent(name)} ${type}` });
    added.push(name);
  }
  return added;
}

function renameDb(stmt: string, db: string): string {
  if (db === 'vora') return stmt;
  return stmt.replace(/\bvora\./g, `${quoteIdent(db)}.`).replace(/(DATABASE IF NOT EXISTS\s+)vora\b/i, `$1${quoteIdent(db)}`);
}
