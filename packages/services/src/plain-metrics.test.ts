import { Registry } from 'prom-client';
import { PlainCounter, PlainHistogram } from './plain-metrics.js';

describe('plain metrics', () => {
  it("write prom-client's exposition: counters by label set, cumulative histogram buckets with sum and count", async () => {
    const registry = new Registry();
    const counter = new PlainCounter(registry, { name: 'x_requests_total', help: 'Requests.', labelNames: ['route', 'status'] });
    const histogram = new PlainHistogram(registry, { name: 'x_duration_seconds', help: 'Durations.', labelNames: ['route'], buckets: [0.1, 1] });
    counter.labels('health', '200').inc();
    counter.labels('health', '200').inc(2);
    counter.labels('chat', '404').inc();
    const health = histogram.labels('health');
    for (const value of [0.05, 0.1, 0.5, 3]) health.observe(value);
    expect(await registry.metrics()).toBe(
      [
        '# HELP x_requests_total Requests.',
        '# TYPE x_requests_total counter',
        'x_requests_total{route="health",status="200"} 3',
        'x_requests_total{route="chat",status="404"} 1',
        '',
        '# HELP x_duration_seconds Durations.',
        '# TYPE x_duration_seconds histogram',
        'x_duration_seconds_bucket{route="health",le="0.1"} 2',
        'x_duration_seconds_bucket{route="health",le="1"} 3',
        'x_duration_seconds_bucket{route="health",le="+Inf"} 4',
        'x_duration_seconds_sum{route="health"} 3.65',
        'x_duration_seconds_count{route="health"} 4',
        '',
      ].join('\n'),
    );
  });
});
