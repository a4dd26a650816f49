export { startFakeUpstream, type FakeBehaviour, type FakeRequest, type FakeUpstream } from './fake-upstream.js';
