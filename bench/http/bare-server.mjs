// Baseline: a bare node:http server answering the same health JSON and a 404 JSON for chat.
import { createServer } from 'node:http';
import { healthResponse, portFromArgs } from './health-body.mjs';

const port = portFromArgs();

const server = createServer((request, response) => {
  if (request.method === 'GET' && request.url === '/v1/health') {
    const body = JSON.stringify(healthResponse());
    response.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    response.end(body);
    return;
  }
  if (request.method === 'POST' && request.url === '/v1/chat/completions') {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      let model = 'unknown';
      try {
        model = JSON.parse(Buffer.concat(chunks).toString('utf8')).model;
      } catch {
        // A malformed body still gets the 404 below; the baseline only measures the happy path.
      }
      const body = JSON.stringify({ status: 404, code: 'model_not_found', detail: `Model ${model} is not registered` });
      response.writeHead(404, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      response.end(body);
    });
    return;
  }
  response.writeHead(404, { 'Content-Length': 0 });
  response.end();
});

server.listen(port, '127.0.0.1', () => process.stderr.write(`bare node:http listening on ${port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
