import { createHardwareProbe } from '@tabagent/hardware';
import type { PullProgress } from '@tabagent/model-cache';
import { createHfTokenStore, createModelLayer } from '@tabagent/services';
import { InvalidRequestError } from '@tabagent/values';
import cliProgress from 'cli-progress';
import { prepareDataDir } from './data-dir.js';
import { parseServeArguments } from './server-config.js';

/** Where the model commands write: the text, and whether it is a terminal (a progress bar) or not (plain lines). */
export interface CommandOutput {
  write(text: string): void;
  isTTY: boolean;
  /** The terminal stream a progress bar draws on. */
  stream?: NodeJS.WriteStream;
}

interface ParsedModelArguments {
  positional: string[];
  options: Record<string, string>;
  serveArguments: string[];
}

/** Splits `<ref> --variant X` from the options shared with `serve` (`--data-dir`, `--hf-endpoint`, ...). */
function parseModelArguments(argv: readonly string[], own: readonly string[]): ParsedModelArguments {
  const parsed: ParsedModelArguments = { positional: [], options: {}, serveArguments: [] };
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index] as string;
    if (!argument.startsWith('--')) {
      parsed.positional.push(argument);
      continue;
    }
    const [name, inline] = argument.split('=', 2) as [string, string | undefined];
    const value = inline ?? argv[++index];
    if (value === undefined) throw new InvalidRequestError(`${name} needs a value`);
    if (own.includes(name)) parsed.options[name] = value;
    else parsed.serveArguments.push(name, value);
  }
  return parsed;
}

function openLayer(serveArguments: readonly string[], env: NodeJS.ProcessEnv) {
  const config = parseServeArguments(serveArguments, env);
  const layout = prepareDataDir(config.dataDir);
  return createModelLayer({
    layout,
    hardware: createHardwareProbe(),
    hfTokens: createHfTokenStore(layout.root),
    hfEndpoint: config.hfEndpoint,
    hfToken: config.hfToken,
  });
}

const megabytes = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

/** `tabagent pull <ref> [--variant Q4_K_M] [--file F] [--revision R]`: a progress bar on a terminal, one line per step otherwise. */
export async function runPull(argv: readonly string[], output: CommandOutput, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const parsed = parseModelArguments(argv, ['--variant', '--file', '--revision']);
  const reference = parsed.positional[0];
  if (reference === undefined)
    throw new InvalidRequestError('Usage: tabagent pull <hf.co/owner/repo[:variant]> [--variant KEY] [--file PATH] [--revision REV]');
  const { puller } = openLayer(parsed.serveArguments, env);
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let bar: cliProgress.SingleBar | null = null;
  let barFile: string | undefined;
  let lastLine = 0;
  const stopBar = (): void => {
    bar?.stop();
    bar = null;
  };
  const onProgress = (progress: PullProgress): void => {
    if (progress.status !== 'downloading' || progress.file === undefined) {
      stopBar();
      output.write(`${progress.status}${progress.file ? ` ${progress.file}` : ''}\n`);
      return;
    }
    const completed = progress.completed ?? 0;
    const total = progress.total ?? 0;
    const speed = `${megabytes(progress.bytesPerSecond ?? 0)}/s`;
    if (output.isTTY) {
      if (barFile !== progress.file) {
        stopBar();
        barFile = progress.file;
        bar = new cliProgress.SingleBar(
          { format: `${progress.file} [{bar}] {percentage}% | {done} / {size} | {speed}`, hideCursor: true, stream: output.stream ?? process.stderr },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, completed, { done: megabytes(completed), size: megabytes(total), speed });
      }
      bar?.update(completed, { done: megabytes(completed), size: megabytes(total), speed });
      return;
    }
    // Plain output (a pipe, a log): a line at most every two seconds, and one at the end of each file.
    const now = Date.now();
    if (completed === total || now - lastLine >= 2000) {
      lastLine = now;
      output.write(`downloading ${progress.file} ${completed}/${total} bytes (${total > 0 ? ((completed / total) * 100).toFixed(1) : '0.0'}%) ${speed}\n`);
    }
  };
  try {
    const result = await puller.pull(reference, {
      variant: parsed.options['--variant'],
      file: parsed.options['--file'],
      revision: parsed.options['--revision'],
      signal: controller.signal,
      onProgress,
    });
    stopBar();
    output.write(`pulled ${result.model.id} (${result.alias}, ${megabytes(result.variant.totalBytes)}) into ${result.model.path}\n`);
  } finally {
    stopBar();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** `tabagent list`: the models of the data directory, with partial downloads. */
export async function runList(argv: readonly string[], output: CommandOutput, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const parsed = parseModelArguments(argv, []);
  const { registry, downloader } = openLayer(parsed.serveArguments, env);
  const [models, partials] = await Promise.all([registry.list(), downloader.partials()]);
  const rows = models.map((model) => [model.id, model.format, model.task, model.aliasOf === undefined ? megabytes(model.sizeBytes) : `-> ${model.aliasOf}`]);
  const widths = [0, 1, 2].map((column) => Math.max(4, ...rows.map((row) => (row[column] ?? '').length)));
  output.write(`${['NAME', 'FORMAT', 'TASK'].map((title, column) => title.padEnd(widths[column] ?? 0)).join('  ')}  SIZE\n`);
  for (const row of rows)
    output.write(
      `${row
        .slice(0, 3)
        .map((cell, column) => cell.padEnd(widths[column] ?? 0))
        .join('  ')}  ${row[3] ?? ''}\n`,
    );
  for (const partial of partials) {
    output.write(
      `partial ${partial.repo}/${partial.file}: ${partial.completed}/${partial.total} bytes${partial.active ? ' (downloading)' : ' (pull again to resume)'}\n`,
    );
  }
}

/** `tabagent rm <model>`: deletes a model in the models folder, unregisters a path, or drops an alias. */
export async function runRemove(argv: readonly string[], output: CommandOutput, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const parsed = parseModelArguments(argv, []);
  const id = parsed.positional[0];
  if (id === undefined) throw new InvalidRequestError('Usage: tabagent rm <model>');
  const { registry } = openLayer(parsed.serveArguments, env);
  const status = await registry.remove(id);
  output.write(`${status} ${id}\n`);
}
