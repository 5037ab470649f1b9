import { S3Client } from '@aws-sdk/client-s3';
import type { VoraConfig } from './config.ts';

export function createS3(cfg: VoraConfig): S3Client {
  return new S3Client({
    endpoint: cfg.s3.endpoint,
    region: cfg.s3.region,
    forcePathStyle: true, // MinIO serves buckets by path, not by virtual host
    credentials: { accessKeyId: cfg.s3.accessKeyId, secretAccessKey: cfg.s3.secretAccessKey },
  });
}
