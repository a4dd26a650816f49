// The fake Hub of @tabagent/model-cache/test-support in its own process, so its reads and
// writes do not share the downloader's event loop or memory. Prints its URLs as one JSON line.
import { startFakeHub } from '@tabagent/model-cache/test-support';

const [file, repo, name] = process.argv.slice(2);
const hub = await startFakeHub();
await hub.addRepo(repo, { files: [{ path: name, sourceFile: file }] });
process.stdout.write(`${JSON.stringify({ url: hub.url, cdnUrl: hub.cdnUrl, ...hub.describe(repo, name) })}\n`);
process.on('SIGTERM', () => void hub.close().then(() => process.exit(0)));
