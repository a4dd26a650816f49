// Second baseline ("api package only"): createApiApp with the full middleware stack over a
// provider whose health handler answers and every other route is 501 (chat: model not found).
import { createApiApp, createApiHttpServer } from '@tabagent/api';
import { ModelNotFoundError, NotImplementedError, createAppStateProvider, routeIds } from '@tabagent/values';
import { healthResponse, portFromArgs } from './health-body.mjs';

const port = portFromArgs();

const handlers = Object.fromEntries(
  routeIds.map((id) => [
    id,
    async () => {
      throw new NotImplementedError(`${id} is not built in the benchmark server`, { details: { capability: id } });
    },
  ]),
);
handlers.health = async () => healthResponse();
handlers['chat.completions'] = async (request) => {
  throw new ModelNotFoundError(`Model ${request.model ?? '(default)'} is not registered`);
};

const app = createApiApp(createAppStateProvider(handlers), { allowedOrigins: [], version: '0.1.0' });
const server = process.argv.includes('--plain-node-server') ? (await import('node:http')).createServer(app) : createApiHttpServer(app);
server.listen(port, '127.0.0.1', () => process.stderr.write(`api-only server listening on ${port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
