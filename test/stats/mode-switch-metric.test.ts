import { describe, expect, it } from 'vitest';
import { MetricName } from '../../src/stats/metric-names.js';
import { ColoMetrics } from '../../src/stats/metrics.js';

describe('colo_mode_switches_total', () => {
  it('counts each switch by direction and reason', async () => {
    const m = new ColoMetrics();
    m.modeSwitch({ from: 'compare', to: 'periodic', reason: 'divergence-rate' });
    m.modeSwitch({ from: 'compare', to: 'periodic', reason: 'divergence-rate' });
    m.modeSwitch({ from: 'periodic', to: 'compare', reason: 'calm' });
    const metric = await m.registry.getSingleMetric(MetricName.modeSwitches)!.get();
    const values = metric.values.map((v) => [v.labels.from, v.labels.to, v.labels.reason, v.value]);
    expect(values).toEqual([
      ['compare', 'periodic', 'divergence-rate', 2],
      ['periodic', 'compare', 'calm', 1],
    ]);
  });
});
