export { createNotImplementedHandlers, createTestProvider, testSystemInfo, type TestBackendState } from './test-handlers.js';
