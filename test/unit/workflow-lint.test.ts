import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

// The lint rule is what keeps Node and native code out of the workflow sandbox; prove it bites.
describe('workflow import rule', () => {
  const eslint = new ESLint();
  const lint = async (code: string) => {
    const [res] = await eslint.lintText(code, { filePath: 'src/worker/workflows/probe.ts' });
    return res!.messages.map((m) => m.ruleId);
  };

  it('rejects Node, native and activity value imports', async () => {
    expect(await lint(`import fs from 'node:fs';\nexport const a = fs;\n`)).toContain('@typescript-eslint/no-restricted-imports');
    expect(await lint(`import { probe } from '../../media/index.ts';\nexport const a = probe;\n`)).toContain('@typescript-eslint/no-restricted-imports');
    expect(await lint(`import { createActivities } from '../activities/index.ts';\nexport const a = createActivities;\n`)).toContain(
      '@typescript-eslint/no-restricted-imports',
    );
  });

  it('allows @temporalio/workflow and type-only imports', async () => {
    expect(await lint(`import { sleep } from '@temporalio/workflow';\nimport type { Activities } from '../activities/index.ts';\nexport type A = Activities;\nexport const s = sleep;\n`)).toEqual([]);
  });
});
