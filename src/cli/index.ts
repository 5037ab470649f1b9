// Entry point of the `vora` CLI (bin/vora). Errors are one clear line and a non-zero exit.
import { Command, CommanderError } from 'commander';
import { bench } from './bench.ts';
import { down, status, up } from './stack.ts';
import { events, remove, show, upload, videos } from './videos.ts';

// `vora videos | head` closes our stdout early: that is the reader's choice, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const program = new Command('vora')
  .description('Vora: open video-on-demand platform')
  .option('--api <url>', 'API base URL (default from VORA_API_PORT / VORA_API_URL)')
  .showHelpAfterError()
  .exitOverride();

const globals = () => program.opts<{ api?: string }>();

program.command('up').description('start the whole local stack and keep it running (Ctrl-C stops it)').action(up);
program.command('down').description('stop a running stack').action(down);
program
  .command('status')
  .description('show which services are up')
  .option('--json', 'machine-readable output')
  .action(async (opts: { json?: boolean }) => {
    process.exitCode = await status(Boolean(opts.json));
  });
program
  .command('upload')
  .description('upload video files (resumable), then follow processing until READY or FAILED')
  .argument('<files...>')
  .option('--no-follow', 'print the video id and return once uploaded')
  .option('--json', 'machine-readable output')
  .action(async (files: string[], opts: { follow: boolean; json?: boolean }) => {
    process.exitCode = await upload(files, { ...globals(), ...opts });
  });
program
  .command('videos')
  .description('list videos, newest first')
  .option('--state <state>', 'only videos in this state')
  .option('--limit <n>', 'page size')
  .option('--cursor <cursor>', 'continue a listing')
  .option('--json', 'machine-readable output')
  .action((opts) => videos({ ...globals(), ...opts }));
program.command('show').description('a video with its renditions').argument('<videoId>').option('--json', 'machine-readable output').action((id, opts) => show(id, { ...globals(), ...opts }));
program.command('delete').description('delete a video (cancels processing, removes objects)').argument('<videoId>').option('--json', 'machine-readable output').action((id, opts) => remove(id, { ...globals(), ...opts }));
program.command('events').description("a video's playback analytics").argument('<videoId>').option('--json', 'machine-readable output').action((id, opts) => events(id, { ...globals(), ...opts }));

program
  .command('bench')
  .description('run benchmarks from bench/ (no name: list them); arguments after -- go to the benchmark')
  .argument('[names...]')
  .allowExcessArguments(true)
  .action(async (names: string[]) => {
    // Commander passes what follows `--` as operands too: split it off for the benchmark.
    const dash = process.argv.indexOf('--');
    const extra = dash >= 0 ? process.argv.slice(dash + 1) : [];
    process.exitCode = await bench(names.slice(0, names.length - extra.length), extra);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  const e = err as Error & { code?: string };
  process.stderr.write(`vora: ${e.code ? `${e.code}: ` : ''}${e.message}\n`);
  process.exit(1);
}
