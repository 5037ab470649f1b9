// Browser end-to-end support: Debian's Chromium (apt package `chromium`, installed by
// scripts/bootstrap.sh) driven by playwright-core. No browser is ever downloaded.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO_ROOT } from '../../src/common/config.ts';

export const CHROMIUM = process.env.VORA_CHROMIUM ?? '/usr/bin/chromium';
export const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');

export function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (scripts/bootstrap.sh does it)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

/** Builds web/dist when its sources changed since the last build (same stamp as scripts/bootstrap.sh). */
export function ensureWebBuilt(): void {
  const web = path.join(REPO_ROOT, 'web');
  const files = [
    path.join(web, 'index.html'),
    path.join(web, 'vite.config.ts'),
    path.join(REPO_ROOT, 'package-lock.json'),
    path.join(REPO_ROOT, 'src', 'common', 'video-state.ts'),
    ...execFileSync('find', [path.join(web, 'src'), '-type', 'f'], { encoding: 'utf8' }).split('\n').filter(Boolean).sort(),
  ];
  const h = createHash('sha256');
  for (const f of files) h.update(fs.readFileSync(f));
  const stamp = h.digest('hex').slice(0, 16);
  const stampFile = path.join(web, 'dist', '.build-stamp');
  if (fs.existsSync(path.join(web, 'dist', 'index.html')) && fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8').trim() === stamp) return;
  execFileSync(path.join(REPO_ROOT, 'node_modules', '.bin', 'vite'), ['build', web, '--logLevel', 'warn'], { cwd: REPO_ROOT, stdio: 'inherit' });
  fs.writeFileSync(stampFile, `${stamp}\n`);
}

export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Page console errors and failed requests, for a test's failure message. */
export function collectPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return errors;
}

/** The stack's API key: the harness's VORA_API_KEY, else the key file the API writes into its data dir. */
export function stackApiKey(env: Record<string, string>, dataDir: string): string | undefined {
  if (env.VORA_API_KEY) return env.VORA_API_KEY;
  try {
    return fs.readFileSync(path.join(dataDir, 'api-key'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
