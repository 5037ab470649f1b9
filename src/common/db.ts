import pg from 'pg';
import type { VoraConfig } from './config.ts';

export function createPool(cfg: VoraConfig, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString: cfg.postgres.url, max });
  // An idle client losing its connection (e.g. PostgreSQL restart) must not crash the process.
  pool.on('error', () => {});
  return pool;
}
export type { Pool, PoolClient } from 'pg';
