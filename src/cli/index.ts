// Entry point of the `vora` CLI (bin/vora). Errors are one clear line and a non-zero exit.
import { Command, CommanderError } from 'commander';
import { down, status, up } from './stack.ts';

const program = new Command('vora')
  .description('Vora: open video-on-demand platform')
  .showHelpAfterError()
  .exitOverride();

program.command('up').description('start the whole local stack and keep it running (Ctrl-C stops it)').action(up);
program.command('down').description('stop a running stack').action(down);
program
  .command('status')
  .description('show which services are up')
  .option('--json', 'machine-readable output')
  .action(async (opts: { json?: boolean }) => {
    process.exitCode = await status(Boolean(opts.json));
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  const e = err as Error & { code?: string };
  process.stderr.write(`vora: ${e.code ? `${e.code}: ` : ''}${e.message}\n`);
  process.exit(1);
}
