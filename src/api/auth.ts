// API keys. Write endpoints (tus POST/PATCH/DELETE, DELETE /v1/videos/{id}) need
// `Authorization: Bearer <key>`; reads are public except private videos (their owner's key).
// Keys are `vora_<43 base64url chars>` (256 random bits); only their sha256 is stored
// (`api_keys.hash`), so a database dump does not hand out working keys.
//
// On start (main.ts) the API makes sure one key exists: with none in the table it creates one,
// writes it to `${dataDir}/api-key` (0600) and logs it; `vora up` prints it, the CLI and the test
// harness read it from there.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import type pg from 'pg';
import { withTransaction } from '../common/db.ts';
import { ApiError } from './errors.ts';

type Db = Pick<pg.Pool, 'query'>;

export const API_KEY_FILE = 'api-key';
const KEY_RE = /^vora_[A-Za-z0-9_-]{43}$/;

export interface ApiKey {
  id: string;
  name: string;
}

export const hashApiKey = (key: string) => createHash('sha256').update(key, 'utf8').digest('hex');

export function newApiKeySecret(): string {
  return `vora_${randomBytes(32).toString('base64url')}`;
}

/** Inserts a key under `name`; returns the key itself (shown once) and its id. */
export async function createApiKey(db: Db, name: string, key = newApiKeySecret()): Promise<{ id: string; key: string }> {
  const id = `key_${randomBytes(10).toString('hex')}`;
  await db.query('INSERT INTO api_keys (id, name, hash) VALUES ($1, $2, $3)', [id, name, hashApiKey(key)]);
  return { id, key };
}

export async function revokeApiKey(db: Db, id: string): Promise<void> {
  await db.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL', [id]);
}

/** The `Bearer` token of a request, or null when there is no Authorization header. */
export function bearerOf(header: string | string[] | undefined): string | null {
  const v = Array.isArray(header) ? header[0] : header;
  if (!v) return null;
  const m = /^\s*Bearer\s+(\S+)\s*$/i.exec(v);
  if (!m) throw new ApiError('UNAUTHORIZED', 'Authorization must be "Bearer <api key>"');
  return m[1]!;
}

/** The live key behind a bearer token, or null (unknown, revoked or malformed). */
export async function lookupApiKey(db: Db, key: string): Promise<ApiKey | null> {
  if (!KEY_RE.test(key)) return null;
  const { rows } = await db.query<ApiKey>('SELECT id, name FROM api_keys WHERE hash = $1 AND revoked_at IS NULL', [hashApiKey(key)]);
  return rows[0] ?? null;
}

/** The request's key; without one (or with a bad one) 401 UNAUTHORIZED. */
export async function requireApiKey(db: Db, headers: http.IncomingHttpHeaders): Promise<ApiKey> {
  const token = bearerOf(headers.authorization);
  if (!token) throw new ApiError('UNAUTHORIZED', 'this endpoint needs "Authorization: Bearer <api key>"');
  const key = await lookupApiKey(db, token);
  if (!key) throw new ApiError('UNAUTHORIZED', 'unknown or revoked API key');
  return key;
}

/** The request's key if it sent a valid one, else null (public reads). A bad key is still 401. */
export async function optionalApiKey(db: Db, headers: http.IncomingHttpHeaders): Promise<ApiKey | null> {
  if (!headers.authorization) return null;
  return requireApiKey(db, headers);
}

/**
 * At API start: with no key in the table, create one and write it to `${dataDir}/api-key` (0600).
 * A key file left from before (database wiped, data dir kept) is registered again rather than
 * replaced, so scripts holding it keep working. Several API processes starting at once create one
 * key (advisory lock). Returns the new key, or null when keys existed already.
 */
export async function ensureBootstrapKey(pool: pg.Pool, dataDir: string): Promise<{ id: string; key: string; file: string } | null> {
  const file = path.join(dataDir, API_KEY_FILE);
  return withTransaction(pool, async (client) => {
    await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('vora-bootstrap-key', 0))`);
    const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM api_keys');
    if (rows[0]!.n > 0) return null;
    let existing: string | null = null;
    try {
      existing = fs.readFileSync(file, 'utf8').trim();
    } catch {
      // no file yet
    }
    const created = await createApiKey(client, 'bootstrap', existing && KEY_RE.test(existing) ? existing : undefined);
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(file, `${created.key}\n`, { mode: 0o600 });
    fs.chmodSync(file, 0o600);
    return { ...created, file };
  });
}

/** Reads `${dataDir}/api-key` (CLI, harness, `vora up`); null when there is none. */
export function readApiKeyFile(dataDir: string): string | null {
  try {
    return fs.readFileSync(path.join(dataDir, API_KEY_FILE), 'utf8').trim() || null;
  } catch {
    return null;
  }
}
