// What the API's parts share: dependencies from createApi(deps) plus the options read from env
// (loadApiOptions in src/common/config.ts).
import type { S3Client } from '@aws-sdk/client-s3';
import type { Client as TemporalClient } from '@temporalio/client';
import type pg from 'pg';
import type { ApiOptions, VoraConfig } from '../common/config.ts';

export type { ApiOptions };
import type { Logger } from '../common/log.ts';

export interface ApiContext {
  cfg: VoraConfig;
  pool: pg.Pool;
  /**
   * Connections that hold advisory locks for as long as a request or a finalize runs; a pool of
   * its own so that held locks can never starve the queries made under them.
   */
  lockPool: pg.Pool;
  s3: S3Client;
  temporal: TemporalClient;
  log: Logger;
  opts: ApiOptions;
  /**
   * sha256 of uploads whose every byte this process received in order (tus.ts), with how many
   * bytes it covers; finalize uses it instead of reading the object back. Bounded, per process.
   */
  streamedDigests: Map<string, { offset: number; hash: import('node:crypto').Hash }>;
  /** Every route fastify registered (createApi fills it; OpenAPI lists the ones under /v1/). */
  routes?: { method: string; url: string }[];
}
