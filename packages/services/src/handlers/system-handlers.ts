import type { HardwareProbe } from '@tabagent/hardware';
import { routeList, type RouteResponse } from '@tabagent/values';
import type { HfTokenStore } from '../hf-token-store.js';
import { homedir } from 'node:os';
import { readLogTail, redactLogLine } from '../log-tail.js';
import type { HandlerGroup } from './handler-group.js';

/** What the system handlers need. */
export interface SystemHandlerDeps {
  hardware: HardwareProbe;
  hfTokens: HfTokenStore;
  version: string;
  /** Log file read by `system.logs` (undefined when logging to stderr only). */
  logFile: string | undefined;
  /** The data directory, which `system.logs` shows as `<data-dir>` (default: none known). */
  dataDir?: string;
  /** Models in memory, for `resources.get`. */
  loadedModelResources: () => Promise<RouteResponse<'resources.get'>['loaded_models']>;
  /** Process start, for uptime. */
  startedAt?: number;
}

type SystemRouteId =
  | 'health'
  | 'routes.list'
  | 'system.logs'
  | 'system.info'
  | 'hardware.info'
  | 'hardware.feasibility'
  | 'hardware.recommendations'
  | 'resources.get'
  | 'hf.token.set'
  | 'hf.token.status'
  | 'hf.token.clear';

/** Health, discovery, logs, hardware, resources and the HF token: backed by the hardware package and the data directory. */
export function createSystemHandlers(deps: SystemHandlerDeps): HandlerGroup<SystemRouteId> {
  const startedAt = deps.startedAt ?? Date.now();
  const routes = routeList.map((route) => ({
    id: route.id,
    method: route.method,
    path: route.path,
    aliases: [...(route.aliases ?? [])],
    summary: route.summary,
    tags: [...route.tags],
    streaming: route.streaming !== 'never',
  }));
  return {
    health: async () => ({
      status: 'ok',
      service: 'tabagent-server',
      version: deps.version,
      uptime_seconds: Math.round((Date.now() - startedAt) / 100) / 10,
      timestamp: new Date().toISOString(),
    }),
    'routes.list': async () => ({ routes, total: routes.length }),
    'system.logs': async (request) => {
      const tail = deps.logFile ? await readLogTail(deps.logFile, request.lines) : undefined;
      const known = { dataDir: deps.dataDir ?? '\0', home: homedir() };
      // Any caller may read this: no stack traces, no absolute paths (the file on disk keeps them).
      const lines = tail ? tail.lines.map((line) => redactLogLine(line, known)).join('\n') : '';
      return { lines, log_file: deps.logFile === undefined ? null : redactLogLine(deps.logFile, known), total_lines: tail?.totalLines ?? 0 };
    },
    'system.info': async () => {
      const info = await deps.hardware.getInfo();
      return { os: info.os, cpu: info.cpu, memory: info.memory, gpus: info.gpus, node_version: process.version, server_version: deps.version };
    },
    'hardware.info': async () => {
      const info = await deps.hardware.getInfo();
      return { cpu: info.cpu, memory: info.memory, gpus: info.gpus, advice: info.advice };
    },
    'hardware.feasibility': async (request) => deps.hardware.assessFeasibility(request.model_size_mb),
    'hardware.recommendations': async () => deps.hardware.recommendations(),
    'resources.get': async () => {
      const [info, loaded] = await Promise.all([deps.hardware.getInfo(), deps.loadedModelResources()]);
      return { cpu_ram: info.memory, gpus: info.gpus, loaded_models: loaded };
    },
    'hf.token.set': async (request) => {
      deps.hfTokens.set(request.token);
      return { message: 'Hugging Face token stored' };
    },
    'hf.token.status': async () => {
      const present = deps.hfTokens.get() !== undefined;
      return { has_token: present, message: present ? 'A Hugging Face token is stored' : 'No Hugging Face token is stored' };
    },
    'hf.token.clear': async () => ({ message: deps.hfTokens.clear() ? 'Hugging Face token removed' : 'No Hugging Face token was stored' }),
  };
}
