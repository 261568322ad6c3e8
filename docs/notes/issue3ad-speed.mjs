// A fixed CPU workload (JSON, object building, string hashing) timed 20× in one thread: ms per round, min / median / max.
const obj = { id: 'job_abc', parameters: { t: 1.5, list: Array.from({ length: 20 }, (_, i) => ({ i, s: 'x' + i })) }, labels: { a: 'b' } };
const round = () => { let h = 0; for (let i = 0; i < 4000; i++) { const s = JSON.stringify(obj); const o = JSON.parse(s); h = (h + o.parameters.list.length + s.length) | 0; } return h; };
for (let i = 0; i < 10; i++) round();
const t = []; for (let i = 0; i < 20; i++) { const a = performance.now(); round(); t.push(performance.now() - a); }
t.sort((a, b) => a - b); console.log(`speed probe ms/round min ${t[0].toFixed(2)} med ${t[10].toFixed(2)} max ${t[19].toFixed(2)}`);
