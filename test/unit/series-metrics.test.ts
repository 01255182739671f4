import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { SeriesCounter, SeriesHistogram } from '../../src/observability/series-metrics.js';

describe('series metrics', () => {
  it('export exactly what prom-client exports for the same observations', async () => {
    const reference = new Registry();
    const ours = new Registry();
    const buckets = [0.01, 0.1, 1];
    const h1 = new Histogram({ name: 'x_seconds', help: 'h', labelNames: ['method', 'route'], buckets, registers: [reference] });
    const h2 = new SeriesHistogram({ name: 'x_seconds', help: 'h', labelNames: ['method', 'route'], buckets, registers: [ours] });
    const c1 = new Counter({ name: 'y_total', help: 'c', labelNames: ['method', 'status'], registers: [reference] });
    const c2 = new SeriesCounter({ name: 'y_total', help: 'c', labelNames: ['method', 'status'], registers: [ours] });
    for (const value of [0.005, 0.05, 0.5, 5, 0.1]) {
      h1.observe({ method: 'GET', route: '/a' }, value);
      h2.series({ method: 'GET', route: '/a' }).observe(value);
    }
    h1.observe({ method: 'POST', route: '/b' }, 0.2);
    h2.series({ method: 'POST', route: '/b' }).observe(0.2);
    c1.inc({ method: 'GET', status: '200' }, 3);
    c2.series({ method: 'GET', status: '200' }).value += 3;

    expect(await ours.metrics()).toBe(await reference.metrics());
    expect(await ours.metrics()).toContain('x_seconds_bucket{le="0.1",method="GET",route="/a"} 3');
  });

  it('hands out one series per label set, and reset zeroes them (their holders keep counting)', async () => {
    const registry = new Registry();
    const counter = new SeriesCounter({ name: 'z_total', help: 'z', labelNames: ['route'], registers: [registry] });
    expect(counter.series({ route: '/a' })).toBe(counter.series({ route: '/a' }));
    counter.series({ route: '/a' }).value++;
    expect(await registry.metrics()).toContain('z_total{route="/a"} 1');
    registry.resetMetrics();
    expect(await registry.metrics()).toContain('z_total{route="/a"} 0');
    counter.series({ route: '/a' }).value++;
    expect(await registry.metrics()).toContain('z_total{route="/a"} 1');
  });
});
