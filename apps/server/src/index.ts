export { startServer, type RunningServer, type StartServerOptions } from './start-server.js';
export { defaultServerConfig, parseServeArguments, type ServerConfig, type ServerMode } from './server-config.js';
export { defaultDataDir, prepareDataDir, type DataDirLayout } from './data-dir.js';
export { serverVersion } from './version.js';
