// Per-job segments of W2 from the 3y trace records (/tmp/3ad/out).
import { readdirSync, readFileSync } from 'node:fs';
const dir = process.argv[2] ?? '/tmp/3ad/out';
const by = {};
for (const f of readdirSync(dir)) {
  const role = f.split('-')[0]; const thread = f.split('-').pop().replace('.json','');
  if (thread !== '0') continue;
  by[role] = (by[role] ?? []).concat(JSON.parse(readFileSync(`${dir}/${f}`, 'utf8')));
}
const srv = by['serverProc.ts'] ?? [], wrk = by['workerProc.ts'] ?? [];
const pick = (arr, n) => arr.filter((r) => r[0] === n).sort((a, b) => a[1] - b[1]);
const recv = pick(srv, 'recv'), write = pick(srv, 'write'), cyc = pick(srv, 'cycle'), snap = pick(srv, 'snap'), pol = pick(srv, 'policy'), app = pick(srv, 'apply'), ans = pick(srv, 'answer');
const poll = pick(wrk, 'poll').filter((r) => r[3] > 0), hnd = pick(wrk, 'handler');
const first = (arr, t) => { let lo = 0, hi = arr.length; while (lo < hi) { const m = (lo + hi) >> 1; if (arr[m][1] < t) lo = m + 1; else hi = m; } return arr[lo]; };
const firstEnd = (arr, t) => arr.find((r) => r[2] >= t);
const recvBy = new Map(recv.map((r) => [r[3], r]));
const segs = {}; const rq = {}; const add = (k, v, d) => { (segs[k] ??= []).push(v); if (d) (rq[k] ??= []).push(d[1]); };
const jobs = hnd.slice(-2000);
let rows = [];
for (const h of jobs) {
  const stamp = h[1]; const r = recvBy.get(stamp); if (!r) continue;
  const w = first(write, r[2]); if (!w) continue;
  const c = first(cyc, w[2]); const s = c && first(snap, c[1]); const p = s && first(pol, s[2]); const a = p && first(app, p[2]);
  if (!a) continue;
  const an = first(ans, a[2]); const po = an && poll.find((x) => x[2] >= an[1]);
  if (!po || po[2] > h[2] + 0.001) continue;
  const row = { net_in: r[1] - stamp, route: r[2] - r[1], 'route→write': w[1] - r[2], commit: w[2] - w[1], 'wake→cycle': c[1] - w[2], 'cycle→snap': s[1] - c[1], snap: s[2] - s[1], 'snap→policy': p[1]-s[2], policy: p[2] - p[1], 'policy→apply': a[1]-p[2], apply: a[2] - a[1], 'apply→answer': an[1] - a[2], 'answer→worker': po[2] - an[1], '→handler': h[2] - po[2], total: h[2] - stamp };
  rows.push(row);
  add('route', 0, r[4]); add('commit', 0, w[4]); add('snap', 0, s[4]); add('policy', 0, p[4]); add('apply', 0, a[4]); add('cycle', 0, c[4]);
}
const q = (a, x) => { const s = [...a].sort((m, n) => m - n); return s[Math.min(s.length - 1, Math.floor(x * s.length))]; };
console.log(`matched ${rows.length} of ${jobs.length}`);
for (const k of Object.keys(rows[0])) { const v = rows.map((r) => r[k]); console.log(k.padEnd(14), [0.5, 0.9, 0.99].map((x) => q(v, x).toFixed(3)).join(' / '), ' mean', (v.reduce((a, b) => a + b, 0) / v.length).toFixed(3)); }
console.log('run-queue delay inside segment (p50 / p90 / p99 ms, mean):');
for (const [k, v] of Object.entries(rq)) console.log(k.padEnd(14), [0.5, 0.9, 0.99].map((x) => q(v, x).toFixed(3)).join(' / '), ' mean', (v.reduce((a, b) => a + b, 0) / v.length).toFixed(3));
// Slowest 25: which segment took the excess
rows.sort((a, b) => b.total - a.total);
const med = {}; for (const k of Object.keys(rows[0])) med[k] = q(rows.map((r) => r[k]), 0.5);
const cnt = {}; for (const r of rows.slice(0, Math.ceil(rows.length / 100))) { let best = null, bx = 0; for (const k of Object.keys(r)) if (k !== 'total' && r[k] - med[k] > bx) { bx = r[k] - med[k]; best = k; } cnt[best] = (cnt[best] ?? 0) + 1; }
console.log('slowest 1%: segment with most excess', cnt);
for (const role of Object.keys(by)) { const t = by[role].filter((r) => r[0] === 'total'); console.log(role, 'main thread run/wait ms', t.map((x) => x[4].map((y) => y.toFixed(0)).join('/')).join(' ')); }
// The submit's answer against the cycle: where its work (insight, send) falls relative to the job's segments.
const rep = pick(srv, 'replied'), ins = pick(srv, 'insight');
const ov = { insightEndBeforeSnapEnd: 0, repliedBeforeApplyEnd: 0, n: 0 }; const insD = [], repD = [], wToRep = [];
for (const h of jobs) {
  const r = recvBy.get(h[1]); if (!r) continue; const w = first(write, r[2]); const c = first(cyc, w[2]); const s = first(snap, c[1]); const p = first(pol, s[2]); const a = first(app, p[2]);
  const i = first(ins, w[2] - 0.5); const rp = first(rep, w[2] - 0.5); if (!i || !rp || !a) continue;
  ov.n++; if (i[2] < s[2]) ov.insightEndBeforeSnapEnd++; if (rp[2] < a[2]) ov.repliedBeforeApplyEnd++;
  insD.push(i[2] - i[1]); repD.push(rp[2] - rp[1]); wToRep.push(rp[2] - w[2]);
}
console.log('answer vs cycle', ov, 'insight dur p50', q(insD, .5).toFixed(3), 'replied (after submit resolved) p50', q(repD, .5).toFixed(3), 'commit→replied p50', q(wToRep, .5).toFixed(3));
