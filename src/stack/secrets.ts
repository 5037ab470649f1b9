// Dev-stack credentials are generated on first start and kept in the data dir (mode 0600), never in
// the repo. A second `vora up` reuses them, so MinIO's data stays readable.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface StackSecrets {
  minioUser: string;
  minioPassword: string;
}

export function loadOrCreateSecrets(dataDir: string): StackSecrets {
  const file = path.join(dataDir, 'secrets.json');
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')) as StackSecrets;
  const secrets: StackSecrets = {
    minioUser: `vora-${randomBytes(4).toString('hex')}`,
    minioPassword: randomBytes(24).toString('base64url'),
  };
  fs.mkdirSync(dataDir, { recursive: true });
  fs.writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}
