export { startFakeHub, type FakeHub, type FakeHubFile, type FakeHubRepo, type FakeHubRequest, type FakeHubFaults } from './fake-hub.js';
