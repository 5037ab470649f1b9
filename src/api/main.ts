// API process: `node --import tsx src/api/main.ts`. Config from env via loadConfig() (docs/contract.md
// defaults), API-only knobs via loadApiOptions() (VORA_MAX_UPLOAD_BYTES, VORA_UPLOAD_EXPIRY_HOURS,
// VORA_UPLOAD_SWEEP_SECONDS, VORA_RECONCILE_SECONDS, VORA_UPLOAD_PART_MIB, VORA_UPLOAD_LOCKER).
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../common/config.ts';
import { createPool } from '../common/db.ts';
import { createLogger } from '../common/log.ts';
import { createS3 } from '../common/s3.ts';
import { createApi } from './app.ts';
import { ensureBootstrapKey } from './auth.ts';
import { ensureBucket } from './objects.ts';

const cfg = loadConfig();
const log = createLogger('api', cfg.logLevel);

async function retry<T>(what: string, fn: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      if (attempt === 1 || attempt % 10 === 0) log.warn({ err: (err as Error).message }, `waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function main() {
  const pool = createPool(cfg, 20);
  await retry('postgres', () => pool.query('SELECT 1'));
  const s3 = createS3(cfg);
  await retry('minio', () => ensureBucket(s3, cfg.s3.bucket));
  const connection = await retry('temporal', () => Connection.connect({ address: cfg.temporal.address }));
  const temporal = new Client({ connection, namespace: cfg.temporal.namespace });

  // The first start makes the stack's first API key (written to ${dataDir}/api-key, 0600).
  const boot = await ensureBootstrapKey(pool, cfg.dataDir);
  if (boot) log.info({ keyId: boot.id, file: boot.file }, `created API key ${boot.key} (saved to ${boot.file}); send it as "Authorization: Bearer <key>"`);

  const api = await createApi({ config: cfg, pool, s3, temporal, logger: log });
  const url = await api.listen();
  log.info({ url }, 'api listening');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'api stopping');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    await api.close().catch((err) => log.error({ err }, 'close failed'));
    await connection.close().catch(() => {});
    await pool.end().catch(() => {});
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err) => {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') {
    log.fatal(`port ${cfg.ports.api} on ${cfg.host} is taken; set VORA_API_PORT to another port`);
  } else {
    log.fatal({ err }, 'api failed to start');
  }
  process.exit(1);
});
