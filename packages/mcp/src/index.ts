export { createTabAgentMcpServer, type TabAgentMcpOptions } from './tabagent-mcp-server.js';
export { createMcpHttpHandler, serveMcpOverStdio, type McpServeOptions, type McpStdioSession } from './mcp-transports.js';
