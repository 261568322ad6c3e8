/** Side-by-side comparison of policies: a text table for the terminal and a self-contained HTML page. */
import { PRIORITIES } from '../core/types.ts';
import type { PolicyMetrics } from './metrics.ts';

interface Row {
  label: string;
  values: (m: PolicyMetrics) => number | null;
  fmt: (n: number) => string;
  /** Which direction is better, to mark the best column; null = not compared. */
  better: 'low' | 'high' | null;
}

const f1 = (n: number) => (Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(1));
const pct = (n: number) => `${(n * 100).toFixed(1)}%`;
const f3 = (n: number) => n.toFixed(3);
const fin = (n: number) => (Number.isFinite(n) ? f1(n) : 'impossible');
const int = (n: number) => Math.round(n).toLocaleString('en-US');

function rows(ms: readonly PolicyMetrics[]): Row[] {
  const out: Row[] = [
    { label: 'jobs finished', values: (m) => m.finished, fmt: int, better: 'high' },
    { label: 'mean JCT (s)', values: (m) => m.mean_jct_s, fmt: f1, better: 'low' },
    { label: 'p99 JCT (s)', values: (m) => m.p99_jct_s, fmt: f1, better: 'low' },
  ];
  for (const p of PRIORITIES) {
    if (!ms.some((m) => m.queue_delay_s[p])) continue;
    out.push({ label: `queue delay ${p} mean (s)`, values: (m) => m.queue_delay_s[p]?.mean ?? null, fmt: f1, better: 'low' });
    out.push({ label: `queue delay ${p} p99 (s)`, values: (m) => m.queue_delay_s[p]?.p99 ?? null, fmt: f1, better: 'low' });
  }
  if (ms.some((m) => m.util_cpu !== null)) out.push({ label: 'utilization cpu', values: (m) => m.util_cpu, fmt: pct, better: 'high' });
  if (ms.some((m) => m.util_gpu !== null)) out.push({ label: 'utilization gpu', values: (m) => m.util_gpu, fmt: pct, better: 'high' });
  out.push(
    { label: 'makespan (s)', values: (m) => m.makespan_s, fmt: f1, better: 'low' },
    { label: "Jain's index (contended)", values: (m) => m.jain, fmt: f3, better: 'high' },
    { label: 'preemptions', values: (m) => m.preemptions, fmt: int, better: null },
    { label: 'wasted GPU-hours', values: (m) => m.wasted_gpu_hours, fmt: f1, better: 'low' },
    { label: 'wasted CPU-hours', values: (m) => m.wasted_cpu_hours, fmt: f1, better: 'low' },
    { label: 'decisions/s', values: (m) => m.decisions_per_s, fmt: int, better: null },
  );
  if (ms.some((m) => m.bound)) {
    out.push(
      { label: 'any policy: mean JCT ≥ (s) at this critical p99', values: (m) => m.bound?.mean_jct_s ?? null, fmt: fin, better: null },
      { label: 'any policy: critical p99 ≥ (s) at this mean JCT', values: (m) => m.bound?.critical_p99_s ?? null, fmt: fin, better: null },
    );
  }
  return out;
}

function bestIndex(r: Row, ms: readonly PolicyMetrics[]): number | null {
  if (r.better === null || ms.length < 2) return null;
  let best: number | null = null;
  ms.forEach((m, i) => {
    const v = r.values(m);
    if (v === null || Number.isNaN(v)) return;
    const b = best === null ? null : r.values(ms[best]!);
    if (b === null || b === undefined || (r.better === 'low' ? v < b : v > b)) best = i;
  });
  if (best === null) return null;
  const top = r.values(ms[best]!);
  // A tie for best marks nobody.
  return ms.filter((m) => r.values(m) === top).length > 1 ? null : best;
}

/** Plain-text table: one row per metric, one column per policy; the best value is marked `*`. */
export function textReport(ms: readonly PolicyMetrics[]): string {
  const table: string[][] = [['metric', ...ms.map((m) => m.policy)]];
  for (const r of rows(ms)) {
    const best = bestIndex(r, ms);
    table.push([r.label, ...ms.map((m, i) => {
      const v = r.values(m);
      return v === null || Number.isNaN(v) ? '-' : r.fmt(v) + (i === best ? ' *' : '');
    })]);
  }
  const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
  const line = (row: string[]) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  return [line(table[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...table.slice(1).map(line)].join('\n') + '\n';
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** A self-contained HTML page: the comparison table and, per policy, tenants' shares against their weights. */
export function htmlReport(ms: readonly PolicyMetrics[], title: string): string {
  const head = `<tr><th>metric</th>${ms.map((m) => `<th>${esc(m.policy)}</th>`).join('')}</tr>`;
  const body = rows(ms)
    .map((r) => {
      const best = bestIndex(r, ms);
      return `<tr><td>${esc(r.label)}</td>${ms
        .map((m, i) => {
          const v = r.values(m);
          const s = v === null || Number.isNaN(v) ? '-' : r.fmt(v);
          return `<td class="${i === best ? 'best' : ''}">${esc(s)}</td>`;
        })
        .join('')}</tr>`;
    })
    .join('\n');
  const shares = ms
    .map((m) => {
      const bars = m.tenant_shares
        .map(
          (t) =>
            `<div class="bar"><span class="name">${esc(t.tenant)}</span><span class="got" style="width:${(t.share * 600).toFixed(1)}px"></span>` +
            `<span class="val">${pct(t.share)} (weight ${pct(t.weight_share)})</span></div>`,
        )
        .join('\n');
      return `<h3>${esc(m.policy)}</h3>\n${bars}`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
td:first-child,th:first-child{text-align:left}td.best{background:#dff5df;font-weight:600}
.bar{display:flex;align-items:center;gap:8px;margin:2px 0;font-size:13px}.name{width:120px}
.got{display:inline-block;height:12px;background:#4a7bd0}.val{color:#555}
</style></head><body>
<h1>${esc(title)}</h1>
<p>Each policy ran the same trace on the same simulated cluster. Best value per row highlighted.
Queueing delay = completion − submit − run time. Jain's index: time-weighted over the periods when at least two tenants had jobs waiting, over weighted dominant shares.
The "any policy" rows are lower bounds computed from the trace alone (a fluid relaxation of the cluster, src/sim/bound.ts): no policy, however clever, can have a critical p99 queueing delay as low as this column's with a lower mean JCT than shown, nor this column's mean JCT with a lower critical p99.</p>
<table>
${head}
${body}
</table>
<h2>Share of the dominant resource-time per tenant</h2>
${shares}
</body></html>
`;
}
