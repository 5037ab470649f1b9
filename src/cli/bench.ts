// `vora bench [NAME...]`: runs the benchmarks in bench/ (each prints its inputs and its ratios
// against a peer measured in the same run). Without a name, lists them.
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { REPO_ROOT } from '../common/config.ts';

/** The benchmarks a user runs; helpers that other benches drive (gateway-bench) are left out. */
export const BENCHES: Record<string, string> = {
  media: 'media-pipeline.ts',
  transcode: 'media-transcode.ts',
  upload: 'upload.ts',
  workflow: 'workflow.ts',
  delivery: 'delivery.ts',
};

export async function bench(names: string[], extra: string[]): Promise<number> {
  if (!names.length) {
    for (const [name, file] of Object.entries(BENCHES)) {
      const head = fs.readFileSync(path.join(REPO_ROOT, 'bench', file), 'utf8').split('\n').find((l) => l.startsWith('//')) ?? '';
      process.stdout.write(`${name.padEnd(10)} bench/${file}  ${head.replace(/^\/\/\s*/, '')}\n`);
    }
    return 0;
  }
  const unknown = names.filter((n) => !BENCHES[n]);
  if (unknown.length) throw Object.assign(new Error(`unknown benchmark ${unknown.join(', ')}; one of ${Object.keys(BENCHES).join(', ')}`), { code: 'UNKNOWN_BENCH' });
  for (const name of names) {
    process.stderr.write(`[vora bench] ${name}\n`);
    const r = await execa(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'bench', BENCHES[name]!), ...extra], { stdio: 'inherit', reject: false, cwd: REPO_ROOT });
    if (r.exitCode !== 0) return r.exitCode ?? 1;
  }
  return 0;
}
