// The real coding agents end to end: Claude Code (`claude -p`, Anthropic Messages) and Codex
// (`codex exec`, OpenAI Responses) against `tabagent serve`, offline, with their real system
// prompts and tool lists (~10,000 and ~5,000 tokens), on a tiny synthetic model.
// Usage (from the repository root, after `npx nx run server:build`; installs the two CLIs from the
// npm registry into bench/.agents the first time, a few minutes):
//   node bench/agents/cli-e2e.mjs [--claude-version 2.1.197] [--codex-version 0.171.0] [--timeout 300]
// Outside `npm test`: it installs packages and runs for minutes.
//
// The model is random (the tiny llama of the tests, trained for 131,072 tokens, with a ChatML
// template with tools), so its answer is noise; what this checks is the protocol: each CLI sends
// its real first request, the server grows the model's context for it (loaded with the default
// 4,096), streams the answer in the CLI's dialect, and the CLI exits 0 with that answer. The
// server's default stop sequences (params.set) end each answer within a few tokens, as a real
// model's end of turn would; without them a random model writes until max_tokens, and Claude Code
// asks again three times and then fails ("Output token limit hit"), as it should.
// Both CLIs are kept off the network by their documented settings and a throwaway HOME each.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chatMlToolsTemplate } from '@tabagent/gguf-loader/test-support';
import { benchModelsDir, option, repositoryRoot, startTabagent } from '../support/bench-support.mjs';

const claudeVersion = option('claude-version', '2.1.197');
const codexVersion = option('codex-version', '0.171.0');
const timeoutSeconds = Number(option('timeout', '300'));
const agentsDir = join(repositoryRoot, 'bench', '.agents');
const model = 'agent-e2e-tiny';

/** Installs the two CLIs once into bench/.agents (its own package.json, pinned versions). */
function ensureClis() {
  const marker = join(agentsDir, `installed-${claudeVersion}-${codexVersion}`);
  if (existsSync(marker)) return;
  mkdirSync(agentsDir, { recursive: true });
  writeFileSync(join(agentsDir, 'package.json'), JSON.stringify({ name: 'tabagent-bench-agents', private: true }));
  console.error(`installing @anthropic-ai/claude-code@${claudeVersion} and @openai/codex@${codexVersion} into ${agentsDir}`);
  const installed = spawnSync('npm', ['i', '-E', '--no-audit', '--no-fund', `@anthropic-ai/claude-code@${claudeVersion}`, `@openai/codex@${codexVersion}`], {
    cwd: agentsDir,
    stdio: 'inherit',
  });
  if (installed.status !== 0) throw new Error(`npm i failed with ${installed.status}`);
  writeFileSync(marker, '');
}

/** Writes the fixture model once. */
async function ensureModel() {
  const path = join(benchModelsDir, `${model}.gguf`);
  if (!existsSync(path)) {
    const { writeTinyLlamaGguf } = await import('@tabagent/gguf-loader/test-support');
    mkdirSync(benchModelsDir, { recursive: true });
    // A vocabulary of two- and three-letter pieces, so the agents' prompts take ~3 characters a token, not 1.
    writeTinyLlamaGguf(path, { chatTemplate: chatMlToolsTemplate, contextLength: 131072, vocabularySize: 32000, name: model });
  }
  return path;
}

/** Runs a CLI with a timeout: exit code, output, seconds. */
function runCli(command, args, env, cwd) {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (bytes) => (stdout += bytes));
    child.stderr.on('data', (bytes) => (stderr += bytes));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutSeconds * 1000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, seconds: (performance.now() - started) / 1000 });
    });
  });
}

ensureClis();
const modelPath = await ensureModel();
const server = await startTabagent({ models: [modelPath], args: ['--threads', '1', '--log-level', 'info'] });
const post = async (path, body) => {
  const response = await fetch(`${server.baseUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
};
await post('/v1/params', { stop: ['e', 'a', ' '] });
const scratch = mkdtempSync(join(tmpdir(), 'agents-e2e-'));
const quiet = {
  PATH: process.env.PATH,
  DISABLE_TELEMETRY: '1',
  DISABLE_ERROR_REPORTING: '1',
  DISABLE_AUTOUPDATER: '1',
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
};

const results = [];
try {
  // Claude Code: ANTHROPIC_BASE_URL without /v1 (the SDK appends /v1/messages), every model tier on the local model.
  const claudeHome = join(scratch, 'home-claude');
  mkdirSync(claudeHome);
  const claude = await runCli(
    join(agentsDir, 'node_modules', '.bin', 'claude'),
    ['-p', 'say ok', '--model', model, '--output-format', 'json'],
    {
      ...quiet,
      HOME: claudeHome,
      ANTHROPIC_BASE_URL: server.baseUrl,
      ANTHROPIC_AUTH_TOKEN: 'local',
      CLAUDE_CODE_ATTRIBUTION_HEADER: '0',
      ANTHROPIC_DEFAULT_HAIKU_MODEL: model,
      ANTHROPIC_DEFAULT_SONNET_MODEL: model,
      ANTHROPIC_DEFAULT_OPUS_MODEL: model,
      ANTHROPIC_SMALL_FAST_MODEL: model,
      CLAUDE_CODE_SUBAGENT_MODEL: model,
    },
    scratch,
  );
  let claudeResult = null;
  try {
    claudeResult = JSON.parse(claude.stdout);
  } catch {
    // reported below as output that is not JSON
  }
  results.push({
    cli: `claude ${claudeVersion}`,
    exit: claude.code,
    seconds: claude.seconds,
    ok: claude.code === 0 && claudeResult !== null && claudeResult.is_error === false,
    detail:
      claudeResult === null
        ? `stdout not JSON: ${claude.stdout.slice(0, 300)} ${claude.stderr.slice(0, 300)}`
        : `result ${JSON.stringify(claudeResult.result)}, turns ${claudeResult.num_turns}`,
  });

  // Codex: a model provider whose wire API is responses, everything that would call home off.
  const codexHome = join(scratch, 'home-codex', '.codex');
  mkdirSync(codexHome, { recursive: true });
  writeFileSync(
    join(codexHome, 'config.toml'),
    [
      `model = "${model}"`,
      'model_provider = "tabagent"',
      'check_for_update_on_startup = false',
      '[model_providers.tabagent]',
      'name = "TabAgent"',
      `base_url = "${server.baseUrl}/v1"`,
      'wire_api = "responses"',
      'env_key = "TABAGENT_KEY"',
      '[analytics]',
      'enabled = false',
      '[feedback]',
      'enabled = false',
      '[otel]',
      'exporter = "none"',
      'trace_exporter = "none"',
      'metrics_exporter = "none"',
      '[history]',
      'persistence = "none"',
      '[features]',
      'plugins = false',
      '',
    ].join('\n'),
  );
  const codex = await runCli(
    join(agentsDir, 'node_modules', '.bin', 'codex'),
    ['exec', '--skip-git-repo-check', 'print the word ok'],
    { ...quiet, HOME: join(scratch, 'home-codex'), CODEX_HOME: codexHome, TABAGENT_KEY: 'local' },
    scratch,
  );
  results.push({
    cli: `codex ${codexVersion}`,
    exit: codex.code,
    seconds: codex.seconds,
    ok: codex.code === 0,
    detail: `stdout ${JSON.stringify(codex.stdout.trim().slice(0, 200))}${codex.code === 0 ? '' : `, stderr ${JSON.stringify(codex.stderr.slice(-400))}`}`,
  });
  const loaded = await (await fetch(`${server.baseUrl}/v1/models/loaded`)).json();
  results.push({
    cli: 'context after both',
    exit: null,
    seconds: 0,
    ok: true,
    detail: JSON.stringify(loaded.models.map((entry) => ({ model: entry.model, context_size: entry.context_size }))),
  });
} finally {
  await server.stop();
  rmSync(scratch, { recursive: true, force: true });
}

for (const result of results) {
  console.log(
    `${result.ok ? 'ok  ' : 'FAIL'} ${result.cli.padEnd(20)} exit ${String(result.exit).padEnd(4)} ${result.seconds.toFixed(1).padStart(6)} s  ${result.detail}`,
  );
}
process.exitCode = results.every((result) => result.ok) ? 0 : 1;
