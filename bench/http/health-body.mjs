// The health JSON every benchmark target answers, built per request as a real handler does.
const startedAt = Date.now();

/** The health response object (same shape as the catalogue's HealthResponse). */
export function healthResponse() {
  return {
    status: 'ok',
    service: 'tabagent-server',
    version: '0.1.0',
    uptime_seconds: (Date.now() - startedAt) / 1000,
    timestamp: new Date().toISOString(),
  };
}

/** Reads `--port <n>` from argv. */
export function portFromArgs(argv = process.argv) {
  const index = argv.indexOf('--port');
  const port = Number(index === -1 ? NaN : argv[index + 1]);
  if (!Number.isInteger(port) || port <= 0) throw new Error('usage: --port <n>');
  return port;
}
