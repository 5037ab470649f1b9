// Dev-stack credentials are generated on first start and kept in the data dir (mode 0600), never in
// the repo. A second `vora up` reuses them, so MinIO's data stays readable.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface StackSecrets {
  minioUser: string;
  minioPassword: string;
  /** HMAC secret of private videos' playback tokens (VORA_PLAYBACK_SECRET). */
  playbackSecret: string;
}

export function loadOrCreateSecrets(dataDir: string): StackSecrets {
  const file = path.join(dataDir, 'secrets.json');
  if (fs.existsSync(file)) {
    const found = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<StackSecrets>;
    if (found.minioUser && found.minioPassword && found.playbackSecret) return found as StackSecrets;
    // A data dir from before a secret existed: keep what is there, add what is missing.
    const filled: StackSecrets = { ...fresh(), ...found } as StackSecrets;
    fs.writeFileSync(file, JSON.stringify(filled, null, 2), { mode: 0o600 });
    return filled;
  }
  const secrets = fresh();
  fs.mkdirSync(dataDir, { recursive: true });
  fs.writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}

function fresh(): StackSecrets {
  return {
    minioUser: `vora-${randomBytes(4).toString('hex')}`,
    minioPassword: randomBytes(24).toString('base64url'),
    playbackSecret: randomBytes(32).toString('base64url'),
  };
}
