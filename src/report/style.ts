/** The report's stylesheet, inlined into the page: system fonts only, so nothing is fetched. */
export const reportStyle = `
:root {
  --fg: #1d2430; --muted: #5f6b7a; --line: #d9dee5; --bg: #f4f6f9; --card: #ffffff;
  --ok: #1b7f4b; --bad: #b3261e; --accent: #0072b2;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 14px; color: var(--fg); background: var(--bg);
}
* { box-sizing: border-box; }
body { margin: 0; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 24px 40px; }
header h1 { font-size: 22px; margin: 0 0 4px; font-weight: 650; word-break: break-all; }
h2 { font-size: 15px; margin: 0 0 12px; font-weight: 600; }
section, .alert { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 16px 18px;
  margin: 16px 0; }
.alert { border-color: var(--bad); background: #fdf0ef; }
.alert ul { margin: 0; padding-left: 20px; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.grid2 > section { margin: 0; min-width: 0; }
.grid2 + section, section + .grid2 { margin-top: 16px; }
.tiles { display: grid; grid-template-columns: repeat(6, 1fr); gap: 12px; margin: 18px 0; }
.tile { background: var(--card); border: 1px solid var(--line); border-left: 4px solid var(--accent);
  border-radius: 10px; padding: 10px 12px; }
.tile.warn { border-left-color: #d55e00; }
.tile-value { font-size: 22px; font-weight: 650; font-variant-numeric: tabular-nums; }
.tile-label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.tile-note { color: var(--muted); font-size: 12px; margin-top: 2px; }
.muted { color: var(--muted); }
.note { color: var(--muted); font-style: italic; }
.ok { color: var(--ok); }
.bad { color: var(--bad); font-weight: 600; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top;
  white-space: nowrap; }
td.wrap, th.wrap { white-space: normal; }
th { font-weight: 600; color: var(--muted); font-size: 12px; }
td.num, th.num { text-align: right; }
table + table { margin-top: 14px; }
.scroll { max-height: 520px; overflow: auto; }
.detail { color: var(--muted); white-space: pre-wrap; word-break: break-word; }
tr.has-sub td { border-bottom: none; }
tr.sub td { padding-top: 0; }
pre.hex { margin: 0 0 4px; font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  font-size: 12px; line-height: 1.35; white-space: pre; }
pre.hex .off, pre.hex .side, pre.hex .ascii { color: var(--muted); }
pre.hex mark { background: #f6c7c3; color: var(--bad); font-weight: 700; border-radius: 2px; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; margin-top: 8px; color: var(--muted); font-size: 12px; }
.key { display: inline-flex; align-items: center; gap: 6px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
svg.plot { display: block; max-width: 100%; height: auto; }
svg.plot text { font-family: inherit; font-size: 12px; fill: var(--fg); }
svg.plot text.mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 11.5px; }
svg.plot .tick, svg.plot .muted, svg.plot .side-label { fill: var(--muted); font-size: 11px; }
svg.plot .value { fill: var(--muted); font-variant-numeric: tabular-nums; }
svg.plot .grid { stroke: var(--line); stroke-width: 1; }
svg.plot .axis { stroke: #8a94a3; stroke-width: 1; }
svg.plot .frame { fill: none; stroke: var(--line); stroke-dasharray: 4 3; }
svg.plot .mark:hover { opacity: .8; }
footer { color: var(--muted); font-size: 12px; margin-top: 24px; }
@media (max-width: 800px) { .grid2 { grid-template-columns: 1fr; } .tiles { grid-template-columns: repeat(2, 1fr); } }
@media print { body { background: #fff; } section { break-inside: avoid; } }
`;
