import pg from 'pg';
import type { VoraConfig } from './config.ts';

export function createPool(cfg: VoraConfig, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString: cfg.postgres.url, max });
  // An idle client losing its connection (e.g. PostgreSQL restart) must not crash the process.
  pool.on('error', () => {});
  return pool;
}
export type { Pool, PoolClient } from 'pg';

/** Anything that runs a query: the pool, or a client inside a transaction. */
export type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient;

/**
 * Runs fn inside BEGIN/COMMIT on one connection; any throw rolls back and is rethrown. Given the
 * pool it takes a client and gives it back; given a client it holds (e.g. one under a session lock)
 * it uses that one and leaves it connected.
 */
export async function withTransaction<T>(db: pg.Pool | pg.PoolClient, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const own = db instanceof pg.Pool;
  const client = own ? await db.connect() : db;
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch((e: Error) => {
      broken = e;
    });
    throw err;
  } finally {
    // A connection that could not even roll back is not given back to the pool for reuse.
    if (own) client.release(broken);
  }
}
