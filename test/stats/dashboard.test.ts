import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { metricNames } from '../../src/stats/metric-names.js';
import { ColoMetrics } from '../../src/stats/metrics.js';

interface Target {
  expr?: string;
}
interface Panel {
  title?: string;
  type: string;
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  panels: Panel[];
  templating: { list: { name: string; query?: string | { query: string } }[] };
}

const dashboard = JSON.parse(
  readFileSync(new URL('../../docs/grafana-dashboard.json', import.meta.url), 'utf8'),
) as Dashboard;

/** PromQL words that look like identifiers but are not metric names. */
const promqlWords = new Set([
  ...['sum', 'min', 'max', 'avg', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values', 'group'],
  ...['rate', 'irate', 'increase', 'delta', 'idelta', 'deriv', 'resets', 'changes', 'absent', 'absent_over_time'],
  ...['histogram_quantile', 'clamp', 'clamp_min', 'clamp_max', 'abs', 'ceil', 'floor', 'round', 'scalar', 'vector'],
  ...['sum_over_time', 'avg_over_time', 'max_over_time', 'min_over_time', 'count_over_time', 'last_over_time'],
  ...['label_replace', 'label_join', 'label_values', 'time', 'timestamp', 'sort', 'sort_desc', 'predict_linear'],
  ...['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset'],
  ...['inf', 'nan'],
]);

/**
 * The metric names a PromQL expression reads. Removes what cannot be a metric name — string literals,
 * label matchers {...}, grouping clauses by (...), ranges [...], Grafana variables, numbers — then keeps
 * the identifiers that are not PromQL functions or keywords.
 */
function metricsInExpr(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ')
    .replace(/\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b/gi, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    if (!promqlWords.has(match[0].toLowerCase())) names.add(match[0]);
  }
  return [...names];
}

function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

function queriesOf(d: Dashboard): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const panel of allPanels(d.panels)) {
    for (const target of panel.targets ?? []) {
      if (target.expr !== undefined) out.push({ where: `panel "${panel.title}"`, expr: target.expr });
    }
  }
  for (const variable of d.templating.list) {
    const q = typeof variable.query === 'object' ? variable.query.query : variable.query;
    if (q !== undefined && variable.name !== 'datasource') out.push({ where: `variable $${variable.name}`, expr: q });
  }
  return out;
}

/**
 * Every series name the registry exposes, including a histogram's _bucket, _sum and _count: ColoMetrics' own
 * and the process and Node.js metrics the statistics server adds.
 */
async function exposedSeries(): Promise<Set<string>> {
  const coloMetrics = new ColoMetrics();
  coloMetrics.collectProcessMetrics();
  const metrics = await coloMetrics.registry.getMetricsAsJSON();
  const names = new Set<string>();
  for (const m of metrics) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(m.name + suffix);
  }
  return names;
}

describe('docs/grafana-dashboard.json', () => {
  it('finds metric names in PromQL, and only those', () => {
    expect(
      metricsInExpr(
        'histogram_quantile(0.99, sum by (le, phase) (rate(colo_checkpoint_phase_seconds_bucket{instance=~"$instance", x="rate(y)"}[$__rate_interval])))',
      ),
    ).toEqual(['colo_checkpoint_phase_seconds_bucket']);
    expect(metricsInExpr('sum(rate(a_total[5m])) / sum(rate(b_total[5m])) > 0 and on(x) c')).toEqual([
      'a_total',
      'b_total',
      'c',
    ]);
    expect(metricsInExpr('label_values(colo_mode, instance)')).toEqual(['colo_mode', 'instance']);
  });

  it('has a query in every graph panel', () => {
    const graphs = allPanels(dashboard.panels).filter((p) => p.type !== 'row');
    expect(graphs.length).toBeGreaterThanOrEqual(10);
    for (const panel of graphs) expect(panel.targets?.length ?? 0, `panel "${panel.title}"`).toBeGreaterThan(0);
  });

  it('queries only metrics that ColoMetrics registers', async () => {
    const exposed = await exposedSeries();
    const queries = queriesOf(dashboard);
    expect(queries.length).toBeGreaterThan(10);
    const unknown: string[] = [];
    for (const { where, expr } of queries) {
      // label_values(metric, label): the second argument is a label name, not a metric.
      const names = expr.startsWith('label_values(') ? metricsInExpr(expr).slice(0, 1) : metricsInExpr(expr);
      expect(names.length, `${where}: ${expr}`).toBeGreaterThan(0);
      for (const name of names) if (!exposed.has(name)) unknown.push(`${where}: ${name}`);
    }
    expect(unknown).toEqual([]);
  });

  it('shows every metric ColoMetrics registers somewhere', () => {
    const used = new Set(queriesOf(dashboard).flatMap(({ expr }) => metricsInExpr(expr)));
    const base = new Set([...used].map((n) => n.replace(/_(bucket|sum|count)$/, '')));
    const missing = metricNames.filter((name) => !used.has(name) && !base.has(name));
    expect(missing).toEqual([]);
  });

  it('would catch a panel querying a metric that does not exist', async () => {
    const exposed = await exposedSeries();
    const names = metricsInExpr('sum(rate(colo_divergence_total[5m]))');
    expect(names.every((n) => exposed.has(n))).toBe(false);
  });
});
