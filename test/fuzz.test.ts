/**
 * Property-based fuzzing (fast-check) of EVERY API route, enumerated from the running app's
 * OpenAPI document — routes added later are covered without touching this file. Random and
 * malformed JSON, wrong types, huge strings and arrays, unicode, negative and overflowing
 * numbers, unknown fields, duplicate keys, bad cursors, bad or missing tokens, wrong content
 * types and bad path ids must always get a 4xx `{error: {code, message}}` with a code from the
 * one error table (or a 2xx when the input happens to be valid) — never a 5xx — and the store's
 * invariants must still hold afterwards. Both stores, in-process (app.inject).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { setTimeout as sleep } from 'node:timers/promises';
import { STORE_KINDS } from './helpers/db.ts';
import { startCluster, type TestCluster } from './helpers/cluster.ts';
import { ERROR_CODES } from '../src/core/errors.ts';
import { checkInvariants, rawDb } from './chaos/invariants.ts';

const RUNS_PER_ROUTE = Number(process.env.GANTRY_FUZZ_RUNS ?? 120);
type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
interface Route {
  method: Method;
  path: string;
  body: { properties?: Record<string, unknown>; required?: string[] } | null;
  query: string[];
}
interface FuzzRequest {
  ids: string[];
  query: [string, string][];
  body: { kind: 'none' } | { kind: 'json'; value: unknown } | { kind: 'raw'; text: string };
  auth: string | null;
  contentType: string | null;
}

const HUGE = 'x'.repeat(300_000);
const weirdString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom('', ' ', '\u0000', '\ud800', '💥'.repeat(2000), HUGE, '-1', '1e400', 'NaN', 'null', '[]', '{}', '../../etc/passwd', '%zz', "'; DROP TABLE jobs; --", 'job_0000000000000000'),
);
const weirdNumber = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(-1, 0, 0.5, -0, 2 ** 31, 2 ** 53 + 2, -(2 ** 63), 1e308, -1e308, Number.MAX_SAFE_INTEGER, 1e-320),
);
const scalar = fc.oneof(weirdString, weirdNumber, fc.boolean(), fc.constant(null));
const weirdValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: scalar },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 5 }) },
  { weight: 1, arbitrary: fc.dictionary(weirdString, scalar, { maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.constantFrom(new Array(20_000).fill(1), new Array(2000).fill('a'.repeat(100)), { a: { b: { c: { d: { e: [[[[[1]]]]] } } } } }) },
);
const cursor = fc.oneof(
  weirdString,
  fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v)).toString('base64url')),
  fc.constantFrom('c_', 'c_-1', 'c_99999999999999999999999', 'c_1e9', 'c_0x10', Buffer.from('seq:-5').toString('base64')),
);
const CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'garbage', ''];

/** Percent-encoding that also takes lone surrogates (as U+FFFD, like a browser). */
const enc = (s: string) => encodeURIComponent(s.toWellFormed());

/** The routes as the running app documents them. */
function routesOf(doc: { paths: Record<string, Record<string, { parameters?: { name: string; in: string }[]; requestBody?: { content: Record<string, { schema: Route['body'] }> } }>> }): Route[] {
  const out: Route[] = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [m, op] of Object.entries(ops)) {
      out.push({
        method: m.toUpperCase() as Method,
        path,
        body: op.requestBody?.content['application/json']?.schema ?? null,
        query: (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name),
      });
    }
  }
  return out;
}

/** A JSON object with duplicate keys (JSON.parse keeps the last; the text has both). */
function duplicateKeys(base: Record<string, unknown>, key: string, second: unknown): string {
  const text = JSON.stringify(base);
  const dup = `${JSON.stringify(key)}:${JSON.stringify(second) ?? 'null'}`;
  return text === '{}' ? `{${dup},${dup}}` : `${text.slice(0, -1)},${dup}}`;
}

for (const kind of STORE_KINDS) {
  describe(`fuzz every API route on ${kind}`, () => {
    let cl: TestCluster;
    let token: string;
    let routes: Route[];
    /** Real ids, so some requests reach past the "not found" checks. */
    const real: { job: string; worker: string; attempt: string } = { job: '', worker: '', attempt: '' };
    let tried = 0;
    /** Requests still waiting after 5 s (a valid long-poll that slipped through): counted, not failed. */
    let longPolls = 0;
    before(async () => {
      cl = await startCluster(kind);
      token = cl.server.admin_token!;
      const res = await cl.server.app.inject({ method: 'GET', url: '/api/v1/openapi.json', headers: { authorization: `Bearer ${token}` } });
      routes = routesOf(res.json());
      const w = await cl.client.registerWorker({ name: 'fuzz-worker', kind: 'handler', handlers: ['fuzz'], capacity: { slots: 1 } });
      real.worker = w.worker_id;
      real.job = (await cl.client.submit({ handler: 'fuzz', name: 'fuzz-target' })).job_id;
      await cl.server.scheduler.cycle();
      real.attempt = (await cl.client.poll(real.worker, 0, [])).jobs[0]?.attempt_id ?? 'att_none';
    });
    after(async () => {
      console.log(`# fuzz on ${kind}: ${tried} requests over ${routes.length} routes, none answered 5xx (${longPolls} still long-polling after 5 s)`);
      await cl.close();
    });

    test('the route list comes from the running app and covers the job, queue and worker APIs', () => {
      const paths = new Set(routes.map((r) => `${r.method} ${r.path}`));
      for (const p of ['POST /api/v1/jobs', 'GET /api/v1/jobs/{id}', 'POST /api/v1/workers/{id}/report', 'GET /api/v1/dead-letter', 'GET /health']) {
        assert.ok(paths.has(p), `${p} in ${[...paths].join(', ')}`);
      }
    });

    /** Valid bodies to mutate, so fuzzing also reaches the code behind validation. */
    const validBase = (r: Route): Record<string, unknown> => {
      const byPath: Record<string, Record<string, unknown>> = {
        'POST /api/v1/jobs': { command: ['true'], name: 'fz' },
        'POST /api/v1/jobs/batch': { jobs: [{ command: ['true'] }, { handler: 'fuzz' }] },
        'POST /api/v1/workers': { name: 'fz', kind: 'process', capacity: { slots: 1 } },
        'POST /api/v1/workers/{id}/report': { reports: [{ job_id: real.job, attempt_id: real.attempt, outcome: 'progress', progress: 0.5 }] },
        'POST /api/v1/queue/reorder': { job_id: real.job, new_position: 1 },
        'PUT /api/v1/jobs/{id}/priority': { priority: 'high' },
        'POST /api/v1/workers/{id}/poll': { wait_ms: 0 },
      };
      return structuredClone(byPath[`${r.method} ${r.path}`] ?? {});
    };

    const requestFor = (r: Route): fc.Arbitrary<FuzzRequest> => {
      const nIds = (r.path.match(/\{[^}]+\}/g) ?? []).length;
      const isWorker = r.path.includes('/workers/');
      const id = fc.oneof(
        { weight: 2, arbitrary: fc.constant(isWorker ? real.worker : real.job) },
        { weight: 3, arbitrary: weirdString },
      );
      const fields = Object.keys(r.body?.properties ?? {});
      const key = fields.length ? fc.oneof(fc.constantFrom(...fields), weirdString) : weirdString;
      const body: fc.Arbitrary<FuzzRequest['body']> = fc.oneof(
        { weight: 1, arbitrary: fc.constant({ kind: 'none' as const }) },
        { weight: 1, arbitrary: fc.constant(null).map(() => ({ kind: 'json' as const, value: validBase(r) })) },
        { weight: 3, arbitrary: fc.tuple(key, weirdValue).map(([k, v]) => ({ kind: 'json' as const, value: { ...validBase(r), [k]: v } })) },
        { weight: 2, arbitrary: fc.dictionary(key, weirdValue, { maxKeys: 5 }).map((value) => ({ kind: 'json' as const, value })) },
        { weight: 1, arbitrary: weirdValue.map((value) => ({ kind: 'json' as const, value })) },
        { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }).map((text) => ({ kind: 'raw' as const, text })) },
        { weight: 1, arbitrary: fc.tuple(key, weirdValue).map(([k, v]) => ({ kind: 'raw' as const, text: duplicateKeys(validBase(r), k, v) })) },
        { weight: 1, arbitrary: fc.constantFrom('{"a":', '{"jobs":[', '[1,2', '{"command":["true"]}}', '\ufeff{}', '{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{}}}', 'null', '1e999', '"x"').map((text) => ({ kind: 'raw' as const, text })) },
      );
      const qKey = fc.oneof(fc.constantFrom(...(r.query.length ? r.query : ['limit']), 'cursor', 'limit', 'follow', 'after'), weirdString);
      const qVal = fc.oneof(weirdString, weirdNumber.map(String), cursor);
      return fc.record({
        ids: fc.array(id, { minLength: nIds, maxLength: nIds }),
        query: fc.array(fc.tuple(qKey, qVal), { maxLength: 4 }),
        body,
        auth: fc.oneof(
          { weight: 8, arbitrary: fc.constant(`Bearer ${token}`) },
          { weight: 1, arbitrary: fc.constantFrom(null, 'Bearer', 'Bearer ', 'Bearer gty_wrong', `Basic ${Buffer.from('a:b').toString('base64')}`, `bearer ${token}x`, `Bearer ${'a'.repeat(8000)}`) },
        ),
        contentType: fc.oneof({ weight: 6, arbitrary: fc.constant('application/json') }, { weight: 1, arbitrary: fc.constantFrom(null, ...CONTENT_TYPES) }),
      });
    };

    test('every route answers any input with a 2xx or a 4xx error from the table, never a 5xx', async () => {
      const codes = new Set(Object.keys(ERROR_CODES));
      for (const r of routes) {
        await fc.assert(
          fc.asyncProperty(requestFor(r), async (q) => {
            let i = 0;
            let url = r.path.replace(/\{[^}]+\}/g, () => {
              const v = q.ids[i++] ?? '';
              // A few path values go raw (malformed percent-encoding, slashes); most encoded.
              return v.length % 7 === 3 ? v.replace(/[\s?#]/g, '') : enc(v);
            });
            // follow=true on a live job streams until the job ends, and a poll on a real worker waits: both legitimately long.
            const query = q.query.filter(([k]) => !(k === 'follow' && url.includes(real.job)));
            if (query.length) url += '?' + query.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&');
            let body = q.body;
            // A poll that is valid waits up to wait_ms (20 s by default) for work: legitimately long, so keep valid waits at 0.
            if (r.path.endsWith('/poll')) {
              if (body.kind === 'none') body = { kind: 'json', value: { wait_ms: 0 } };
              else if (body.kind === 'json' && body.value && typeof body.value === 'object' && !Array.isArray(body.value)) {
                const v = body.value as Record<string, unknown>;
                if (v.wait_ms === undefined || (Number.isInteger(v.wait_ms) && Number(v.wait_ms) >= 0 && Number(v.wait_ms) <= 60000)) v.wait_ms = 0;
              }
            }
            const headers: Record<string, string> = {};
            if (q.auth !== null) headers.authorization = q.auth;
            if (body.kind !== 'none' && q.contentType !== null) headers['content-type'] = q.contentType;
            const payload = body.kind === 'none' ? undefined : body.kind === 'raw' ? body.text : JSON.stringify(body.value) ?? 'null';
            tried++;
            const pending = cl.server.app.inject({ method: r.method, url, headers, payload });
            pending.catch(() => {});
            const res = await Promise.race([pending, sleep(5000).then(() => null)]);
            if (!res) {
              longPolls++;
              return;
            }
            const what = `${r.method} ${url.slice(0, 200)} → ${res.statusCode} ${res.body.slice(0, 300)}`;
            assert.ok(res.statusCode < 500, what);
            if (res.statusCode >= 400) {
              const err = JSON.parse(res.body).error;
              assert.ok(err && typeof err.code === 'string' && codes.has(err.code), `unknown error code: ${what}`);
              assert.equal(typeof err.message, 'string', what);
              assert.equal(res.statusCode, ERROR_CODES[err.code as keyof typeof ERROR_CODES].status, `status matches the table: ${what}`);
            }
          }),
          { numRuns: RUNS_PER_ROUTE, seed: Number(process.env.GANTRY_FUZZ_SEED ?? 20261122) },
        );
      }
    });

    test('the store is consistent after the fuzzing: no half-created job, every state and event legal', async () => {
      const db = await rawDb(cl.db.url);
      try {
        const rep = await checkInvariants(db, { markers: null, expectFinal: false });
        assert.deepEqual(rep.violations, []);
        assert.ok(rep.jobs > 1, 'some fuzzed submissions were valid and created jobs');
      } finally {
        await db.close();
      }
    });
  });
}
