// One-shot setup for the compose stack (the `init` service in docker/compose.yaml): what the local
// supervisor's init hooks (src/stack/servers.ts) do once PostgreSQL, MinIO and ClickHouse are up,
// with the same code, so both stacks get the same schema and bucket:
//   - PostgreSQL: migrations/*.sql through src/stack/migrate.ts (schema_migrations + advisory lock,
//     so an api that also migrates on start is safe);
//   - MinIO: the bucket (VORA_S3_BUCKET);
//   - ClickHouse: clickhouse/*.sql through ensureClickhouseSchema (idempotent statements);
//   - Varnish: varnish/default.vcl rendered by renderVcl() with the gateway's compose address
//     (VORA_GATEWAY_URL), written to $VORA_DATA_DIR/vcl/default.vcl on the volume varnish loads it
//     from. The template itself points at 127.0.0.1, which inside compose is Varnish's own container.
// Every step is idempotent: the service runs on every `docker compose up` and exits 0 when done.
// The database itself is created by the postgres image (POSTGRES_DB), unlike the local stack.
import fs from 'node:fs';
import path from 'node:path';
import { ensureClickhouseSchema } from '../src/analytics/schema.ts';
import { ensureBucket } from '../src/api/objects.ts';
import { loadConfig } from '../src/common/config.ts';
import { createPool } from '../src/common/db.ts';
import { createLogger } from '../src/common/log.ts';
import { createS3 } from '../src/common/s3.ts';
import { renderVcl } from '../src/gateway/vcl.ts';
import { migrate } from '../src/stack/migrate.ts';

const cfg = loadConfig();
const log = createLogger('init', cfg.logLevel);

/** Healthchecks say a server accepts connections; give a just-started one a few more tries. */
async function retry<T>(what: string, fn: () => Promise<T>, attempts = 10): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts) throw new Error(`${what} failed after ${attempts} attempts: ${(err as Error).message}`, { cause: err });
      log.warn({ err: (err as Error).message, attempt: i }, `${what} failed, retrying`);
      await new Promise((r) => setTimeout(r, 1000 * i));
    }
  }
}

const pool = createPool(cfg, 1);
try {
  const applied = await retry('postgres migrations', () => migrate(pool));
  log.info({ applied }, 'postgres schema up to date');
} finally {
  await pool.end();
}

const s3 = createS3(cfg);
try {
  await retry('minio bucket', () => ensureBucket(s3, cfg.s3.bucket));
  log.info({ bucket: cfg.s3.bucket }, 'bucket ready');
} finally {
  s3.destroy();
}

const files = await retry('clickhouse schema', () => ensureClickhouseSchema(cfg));
log.info({ files }, 'clickhouse schema up to date');

const gateway = new URL(cfg.gatewayUrl);
const vclFile = path.join(cfg.dataDir, 'vcl', 'default.vcl');
fs.mkdirSync(path.dirname(vclFile), { recursive: true });
fs.writeFileSync(vclFile, renderVcl({ gatewayHost: gateway.hostname, gatewayPort: Number(gateway.port) || 80 }));
log.info({ vclFile, gateway: gateway.host }, 'varnish VCL rendered');
// Done: compose starts the services waiting on this one only once it has exited (0).
process.exit(0);
