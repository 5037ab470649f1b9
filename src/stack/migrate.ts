// Applies migrations/*.sql in name order, each once, each in its own transaction. An advisory
// lock makes concurrent starters (api + supervisor) safe.
import fs from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { REPO_ROOT } from '../common/config.ts';
import { withTransaction } from '../common/db.ts';

const LOCK_KEY = 0x766f7261; // 'vora'

export async function migrate(pool: pg.Pool, dir = path.join(REPO_ROOT, 'migrations')): Promise<string[]> {
  const client = await pool.connect();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = new Set((await client.query<{ name: string }>('SELECT name FROM schema_migrations')).rows.map((r) => r.name));
    for (const name of fs.readdirSync(dir).filter((f) => f.endsWith('.sql')).sort()) {
      if (done.has(name)) continue;
      const sql = fs.readFileSync(path.join(dir, name), 'utf8');
      try {
        await withTransaction(client, async (c) => {
          await c.query(sql);
          await c.query('INSERT INTO schema_migrations (name) VALUES ($1)', [name]);
        });
        applied.push(name);
      } catch (err) {
        throw new Error(`migration ${name} failed: ${(err as Error).message}`, { cause: err });
      }
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => {});
    client.release();
  }
  return applied;
}
