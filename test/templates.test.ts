/**
 * Job templates over the REST API on each store: seed 002's bodies verbatim, parameter
 * validation naming the parameter, inheritance, versions pinned by jobs, and execution steps run
 * in order with per-step timeouts on a real process worker.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { STORE_KINDS } from './helpers/db.ts';
import { startCluster, type TestCluster } from './helpers/cluster.ts';

/** Seed 002 bodies, verbatim. */
const SEED_JOB = {
  template: 'ml_training_template',
  parameters: {
    dataset_name: 'iris',
    algorithm: 'random_forest',
    target_column: 'species',
    hyperparameters: {
      n_estimators: 100,
      max_depth: 5,
    },
  },
  priority: 'high',
  resources: {
    cpu_cores: 4,
    memory_gb: 8,
  },
  dependencies: [],
  retry_policy: {
    max_attempts: 3,
    retry_delay: 60,
  },
};
const SEED_BATCH = {
  jobs: [
    {
      template: 'hyperparameter_tuning',
      parameters: { algorithm: 'svm', C: 1.0 },
    },
    {
      template: 'hyperparameter_tuning',
      parameters: { algorithm: 'svm', C: 10.0 },
    },
  ],
  execution_mode: 'parallel',
};
const SEED_CUSTOM_TEMPLATE = {
  name: 'custom_training_template',
  description: 'Custom training workflow',
  base_template: 'ml_training_template',
  custom_parameters: {
    preprocessing_steps: ['normalize', 'feature_selection'],
    validation_strategy: 'cross_validation',
  },
};
const SEED_JOB_TEMPLATE = {
  job_template: {
    name: 'ml_training_template',
    description: 'Standard ML training job',
    default_parameters: {
      algorithm: 'random_forest',
      max_epochs: 100,
      batch_size: 32,
      learning_rate: 0.001,
    },
    resource_requirements: {
      cpu_cores: 2,
      memory_gb: 4,
      gpu_count: 0,
      storage_gb: 10,
    },
    execution_steps: [
      { step: 'data_preparation', timeout: 300 },
      { step: 'model_training', timeout: 1800 },
      { step: 'model_evaluation', timeout: 600 },
      { step: 'model_storage', timeout: 300 },
    ],
  },
};

const FAST = { pace_ms: 1 };

for (const kind of STORE_KINDS) {
  describe(`job templates on ${kind}`, () => {
    let cl: TestCluster;
    let auth: Record<string, string>;
    before(async () => {
      cl = await startCluster(kind, { local_worker: true });
      auth = { authorization: `Bearer ${cl.server.admin_token}` };
    });
    after(() => cl.close());

    const api = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown) => {
      const res = await cl.server.app.inject({
        method, url, headers: { ...auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        payload: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.statusCode, body: res.json() as Record<string, any> };
    };
    const jobCount = async () => (await api('GET', '/api/v1/jobs?limit=1000')).body.jobs.length as number;
    const finished = (id: string) => cl.client.waitFor(id, { timeout_ms: 30_000, interval_ms: 50 });

    test('GET /templates lists the built-ins in seed 002\'s shape', async () => {
      const { status, body } = await api('GET', '/api/v1/templates');
      assert.equal(status, 200);
      const ids = body.templates.map((t: { id: string }) => t.id);
      for (const id of ['ml_training_template', 'data_preprocessing', 'model_evaluation', 'hyperparameter_tuning', 'ml_training', 'data_etl', 'security_scan', 'billing_report', 'tenant_backup']) {
        assert.ok(ids.includes(id), `${id} is built in`);
      }
      const ml = body.templates.find((t: { id: string }) => t.id === 'ml_training_template');
      assert.equal(ml.name, 'ML Model Training');
      assert.equal(ml.description, 'Train machine learning models');
      assert.equal(ml.category, 'machine_learning');
      assert.deepEqual(ml.parameters.find((p: { name: string }) => p.name === 'algorithm'), {
        name: 'algorithm', type: 'string', required: true, options: ['random_forest', 'svm', 'logistic_regression'],
      });
      assert.deepEqual(ml.parameters.find((p: { name: string }) => p.name === 'hyperparameters'), { name: 'hyperparameters', type: 'object', required: false });
      assert.equal(ml.version, 1);
      assert.equal(ml.builtin, true);
    });

    test('seed 002 job body verbatim: renders the template, request resources win, runs every step on a worker', async () => {
      const res = await api('POST', '/api/v1/jobs', SEED_JOB);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.status, 'QUEUED');
      assert.equal(res.body.template, 'ml_training_template');
      const job = await finished(res.body.job_id);
      assert.equal(job.status, 'COMPLETED', job.error ?? '');
      assert.equal(job.template, 'ml_training_template');
      assert.equal(typeof job.template_version, 'number');
      assert.equal(job.priority, 'high');
      // cpu/memory from the request, GPUs and storage from the template's resource_requirements.
      assert.deepEqual(job.resources, { cpu_cores: 4, memory_gb: 8, gpu_count: 0, storage_gb: 10 });
      assert.equal(job.retry_policy.max_attempts, 3);
      assert.equal(job.retry_policy.retry_delay, 60);
      // Parameters: the request's, on top of the template's defaults.
      assert.equal(job.parameters.dataset_name, 'iris');
      assert.equal(job.parameters.max_epochs, 100);
      assert.deepEqual(job.steps?.map((s) => [s.name, s.timeout]), [['data_preparation', 300], ['model_training', 1800], ['model_evaluation', 600], ['model_storage', 300]]);
      const text = (await cl.client.logs(job.job_id)).logs.map((l) => l.data).join('');
      const order = ['data_preparation (1/4) started', 'model_training (2/4) started', 'model_evaluation (3/4) started', 'model_storage (4/4) started'].map((s) => text.indexOf(s));
      assert.ok(order.every((i) => i >= 0), text);
      assert.deepEqual([...order].sort((a, b) => a - b), order, 'steps ran in order');
      assert.match(text, /loading iris/);
      assert.match(text, /::output \{"accuracy":/);
    });

    test('seed 002 batch body verbatim: both hyperparameter points run', async () => {
      const res = await api('POST', '/api/v1/jobs/batch', SEED_BATCH);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.job_ids.length, 2);
      for (const [i, id] of res.body.job_ids.entries()) {
        const j = await finished(id);
        assert.equal(j.status, 'COMPLETED', j.error ?? '');
        assert.equal(j.template, 'hyperparameter_tuning');
        assert.equal(j.parameters.C, SEED_BATCH.jobs[i]!.parameters.C);
        assert.equal(j.env.GANTRY_TEMPLATE, `hyperparameter_tuning@${j.template_version}`);
      }
    });

    const bad: [string, unknown, string, RegExp][] = [
      ['a missing required parameter', { template: 'hyperparameter_tuning', parameters: { C: 1 } }, 'parameters.algorithm', /is required by template hyperparameter_tuning v1/],
      ['a parameter of the wrong type', { template: 'hyperparameter_tuning', parameters: { algorithm: 'svm', C: 'big' } }, 'parameters.C', /expected number, got string 'big'/],
      ['an integer parameter given a fraction', { template: 'hyperparameter_tuning', parameters: { algorithm: 'svm', trials: 2.5 } }, 'parameters.trials', /expected integer/],
      ['a value not in the options', { template: 'hyperparameter_tuning', parameters: { algorithm: 'xgb' } }, 'parameters.algorithm', /'xgb' is not one of svm, random_forest, logistic_regression, xgboost/],
      ['an array item not in the options', { template: 'security_scan', parameters: { frameworks: ['GDPR', 'NIST'] } }, 'parameters.frameworks', /item 'NIST' is not one of/],
      ['a parameter below its minimum', { template: 'hyperparameter_tuning', parameters: { algorithm: 'svm', trials: 0 } }, 'parameters.trials', /below the minimum 1/],
      ['an unknown parameter', { template: 'hyperparameter_tuning', parameters: { algorithm: 'svm', colour: 'red' } }, 'parameters.colour', /unknown parameter; template hyperparameter_tuning v1 takes algorithm, C/],
      ['an unknown template', { template: 'no_such_template' }, 'template', /unknown template 'no_such_template'/],
      ['a template and a command', { template: 'hyperparameter_tuning', command: ['true'], parameters: { algorithm: 'svm' } }, 'command', /either template or command/],
      ['a version that does not exist', { template: 'hyperparameter_tuning', template_version: 99, parameters: { algorithm: 'svm' } }, 'template_version', /has no version 99/],
    ];
    for (const [what, body, field, message] of bad) {
      test(`a job with ${what} → 400 naming ${field}, nothing created`, async () => {
        const before = await jobCount();
        const res = await api('POST', '/api/v1/jobs', body);
        assert.equal(res.status, 400, JSON.stringify(res.body));
        assert.equal(res.body.error.code, 'VALIDATION_FAILED');
        assert.equal(res.body.error.field, field);
        assert.match(res.body.error.message, message);
        assert.equal(await jobCount(), before);
      });
    }

    test('seed 002 custom template verbatim: inherits the base, custom_parameters become defaults', async () => {
      const res = await api('POST', '/api/v1/templates', SEED_CUSTOM_TEMPLATE);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      const t = res.body;
      assert.equal(t.id, 'custom_training_template');
      assert.equal(t.version, 1);
      assert.equal(t.base_template, 'ml_training_template');
      assert.equal(typeof t.base_version, 'number');
      assert.equal(t.description, 'Custom training workflow');
      assert.deepEqual(t.default_parameters.preprocessing_steps, ['normalize', 'feature_selection']);
      assert.equal(t.default_parameters.validation_strategy, 'cross_validation');
      assert.equal(t.default_parameters.algorithm, 'random_forest', 'base defaults kept');
      const names = t.parameters.map((p: { name: string }) => p.name);
      assert.ok(names.includes('algorithm') && names.includes('preprocessing_steps') && names.includes('validation_strategy'));
      assert.deepEqual(t.command, (await api('GET', '/api/v1/templates/ml_training_template')).body.command, 'command inherited');
      // A job from it validates against the inherited parameters and runs the inherited steps.
      const wrong = await api('POST', '/api/v1/jobs', { template: 'custom_training_template', parameters: { algorithm: 'knn' } });
      assert.equal(wrong.status, 400);
      assert.equal(wrong.body.error.field, 'parameters.algorithm');
      const ok = await api('POST', '/api/v1/jobs', { template: 'custom_training_template', parameters: { ...FAST, validation_strategy: 'holdout' } });
      assert.equal(ok.status, 201, JSON.stringify(ok.body));
      const j = await finished(ok.body.job_id);
      assert.equal(j.status, 'COMPLETED', j.error ?? '');
      assert.deepEqual(j.parameters.preprocessing_steps, ['normalize', 'feature_selection']);
      assert.equal(j.parameters.validation_strategy, 'holdout');
      assert.equal(j.steps?.length, 4);
      const text = (await cl.client.logs(j.job_id)).logs.map((l) => l.data).join('');
      assert.match(text, /preprocessing: normalize[\s\S]*preprocessing: feature_selection/);
    });

    test('seed 002 job_template body verbatim: POST refuses the existing name; PUT makes version 2, jobs pin their version', async () => {
      const dup = await api('POST', '/api/v1/templates', SEED_JOB_TEMPLATE);
      assert.equal(dup.status, 409);
      assert.equal(dup.body.error.code, 'CONFLICT');
      assert.match(dup.body.error.message, /template ml_training_template exists .*PUT/);
      const v1job = await api('POST', '/api/v1/jobs', { template: 'ml_training_template', parameters: { ...FAST, max_epochs: 2 } });
      assert.equal(v1job.body.template_version, 1);
      const put = await api('PUT', '/api/v1/templates/ml_training_template', { ...SEED_JOB_TEMPLATE.job_template, default_parameters: { ...SEED_JOB_TEMPLATE.job_template.default_parameters, max_epochs: 3 } });
      assert.equal(put.status, 200, JSON.stringify(put.body));
      assert.equal(put.body.version, 2);
      assert.deepEqual(put.body.versions, [1, 2]);
      assert.equal(put.body.description, 'Standard ML training job');
      assert.ok(put.body.command, 'fields left out (the command) are kept');
      const v2job = await api('POST', '/api/v1/jobs', { template: 'ml_training_template', parameters: FAST });
      assert.equal(v2job.body.template_version, 2);
      const pinned = await api('POST', '/api/v1/jobs', { template: 'ml_training_template', template_version: 1, parameters: FAST });
      assert.equal(pinned.body.template_version, 1);
      const [a, b, c] = await Promise.all([finished(v1job.body.job_id), finished(v2job.body.job_id), finished(pinned.body.job_id)]);
      assert.equal(a.template_version, 1);
      assert.equal(a.parameters.max_epochs, 2);
      assert.equal(b.template_version, 2);
      assert.equal(b.parameters.max_epochs, 3, 'version 2 defaults');
      assert.equal(c.template_version, 1);
      assert.equal(c.parameters.max_epochs, 100, 'version 1 defaults');
      assert.equal((await api('GET', '/api/v1/templates/ml_training_template?version=1')).body.default_parameters.max_epochs, 100);
      // The child made from version 1 keeps its pinned base until it is itself updated.
      const child = (await api('GET', '/api/v1/templates/custom_training_template')).body;
      assert.equal(child.base_version, 1);
      const rebased = await api('PUT', '/api/v1/templates/custom_training_template', { description: 'rebased' });
      assert.equal(rebased.body.base_version, 2);
      assert.equal(rebased.body.default_parameters.max_epochs, 3);
    });

    test('template validation errors name the field; delete keeps what jobs ran', async () => {
      const cases: [unknown, string, RegExp][] = [
        [{ name: 'x1', base_template: 'nope' }, 'base_template', /unknown template 'nope'/],
        [{ name: 'x2', command: ['echo', '{{ colour }}'] }, 'command[1]', /placeholder \{\{ colour \}\} names no parameter/],
        [{ name: 'x3', command: ['true'], parameters: [{ name: 'n', type: 'integer' }], default_parameters: { n: 'ten' } }, 'default_parameters.n', /expected integer/],
        [{ name: 'x4', command: ['true'], parameters: [{ name: 'n', type: 'decimal' }] }, 'parameters[0].type', /unknown parameter type 'decimal'/],
        [{ name: 'x5', command: ['true'], parameters: [{ name: 'm', type: 'string', options: ['a', 'b'], default: 'c' }] }, 'parameters[0].default', /'c' is not one of a, b/],
        [{ name: 'x6', command: ['true'], parameters: [{ name: 'm' }, { name: 'm' }] }, 'parameters[1].name', /declared twice/],
        [{ name: 'x7', command: ['true'], colour: 'red' }, 'colour', /unknown field/],
      ];
      for (const [body, field, message] of cases) {
        const res = await api('POST', '/api/v1/templates', body);
        assert.equal(res.status, 400, JSON.stringify(res.body));
        assert.equal(res.body.error.field, field);
        assert.match(res.body.error.message, message);
      }
      assert.equal((await api('PUT', '/api/v1/templates/nope', { description: 'x' })).status, 404);
      // A base with heirs cannot go; a leaf can, and its jobs still show the version they ran.
      const heirs = await api('DELETE', '/api/v1/templates/ml_training_template');
      assert.equal(heirs.status, 409);
      assert.match(heirs.body.error.message, /base_template of custom_training_template/);
      const leaf = await api('POST', '/api/v1/templates', { name: 'Echo Greeting', command: ['echo', 'hello {{ who }}'], parameters: [{ name: 'who', type: 'string', required: true }] });
      assert.equal(leaf.status, 201);
      assert.equal(leaf.body.id, 'echo_greeting', 'an id made from the display name');
      const job = await api('POST', '/api/v1/jobs', { template: 'echo_greeting', parameters: { who: 'world' } });
      const done = await finished(job.body.job_id);
      assert.deepEqual(done.command, ['echo', 'hello world']);
      assert.equal((await cl.client.logs(done.job_id)).logs.map((l) => l.data).join(''), 'hello world\n');
      assert.equal((await api('DELETE', '/api/v1/templates/echo_greeting')).status, 200);
      assert.equal((await api('GET', '/api/v1/templates/echo_greeting')).status, 404);
      assert.equal((await api('POST', '/api/v1/jobs', { template: 'echo_greeting', parameters: { who: 'x' } })).status, 400);
      const after = await cl.client.getJob(done.job_id);
      assert.equal(after.template, 'echo_greeting');
      assert.equal((await api('GET', `/api/v1/templates/echo_greeting?version=${after.template_version}`)).body.command[1], 'hello {{ who }}');
      // Re-created after deletion: a new version number, so old pins keep their meaning.
      const again = await api('POST', '/api/v1/templates', { id: 'echo_greeting', name: 'Echo', command: ['echo', 'again'] });
      assert.equal(again.body.version, 2);
    });

    test('execution steps run in order, each under its own timeout; a step that overruns ends the job naming it', async () => {
      const node = process.execPath;
      const t = await api('POST', '/api/v1/templates', {
        name: 'three_steps',
        parameters: [{ name: 'nap_ms', type: 'integer', default: 10 }],
        execution_steps: [
          { step: 'one', timeout: 10, command: [node, '-e', 'console.log("one", process.env.GANTRY_STEP)'] },
          { step: 'two', timeout: 0.5, command: [node, '-e', 'setTimeout(() => console.log("two"), {{ nap_ms }})'] },
          { step: 'three', timeout: 10, command: [node, '-e', 'console.log("three")'] },
        ],
        retry_policy: { max_attempts: 1 },
      });
      assert.equal(t.status, 201, JSON.stringify(t.body));
      const ok = await finished((await api('POST', '/api/v1/jobs', { template: 'three_steps' })).body.job_id);
      assert.equal(ok.status, 'COMPLETED', ok.error ?? '');
      const okText = (await cl.client.logs(ok.job_id)).logs.filter((l) => !l.data.startsWith('[gantry]')).map((l) => l.data).join('');
      assert.equal(okText, 'one one\ntwo\nthree\n');
      const started = Date.now();
      const slow = await finished((await api('POST', '/api/v1/jobs', { template: 'three_steps', parameters: { nap_ms: 20_000 } })).body.job_id);
      assert.equal(slow.status, 'TIMEOUT');
      assert.match(slow.error ?? '', /^step two \(2\/3\) timed out after 0\.5s/);
      assert.ok(Date.now() - started < 10_000, 'the step timeout (not the 10 s of the others) stopped it');
      const slowText = (await cl.client.logs(slow.job_id)).logs.map((l) => l.data).join('');
      assert.match(slowText, /one one/);
      assert.doesNotMatch(slowText, /three/, 'no step after the one that timed out');
      // A failing step fails the job, named.
      const f = await finished((await api('POST', '/api/v1/jobs', { template: 'ml_training_template', parameters: { ...FAST, fail_step: 'model_evaluation' }, retry_policy: { max_attempts: 1 } })).body.job_id);
      assert.equal(f.status, 'FAILED');
      assert.match(f.error ?? '', /step model_evaluation \(3\/4\) exited with code 3/);
      assert.doesNotMatch((await cl.client.logs(f.job_id)).logs.map((l) => l.data).join(''), /model_storage \(4\/4\) started/);
    });

    test('a batch with one bad template job rejects the whole batch, naming index and parameter', async () => {
      const before = await jobCount();
      const res = await api('POST', '/api/v1/jobs/batch', { jobs: [SEED_BATCH.jobs[0], { template: 'hyperparameter_tuning', parameters: { algorithm: 'svm', C: -1 } }] });
      assert.equal(res.status, 400);
      assert.equal(res.body.error.field, 'jobs[1].parameters.C');
      assert.equal(await jobCount(), before);
    });

    test('concurrent updates make distinct versions or a 409, never a 500', async () => {
      assert.equal((await api('POST', '/api/v1/templates', { name: 'racy', command: ['true'] })).status, 201);
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => api('PUT', '/api/v1/templates/racy', { description: `edit ${i}` })));
      for (const r of results) assert.ok(r.status === 200 || (r.status === 409 && r.body.error.code === 'CONFLICT'), JSON.stringify(r.body));
      const ok = results.filter((r) => r.status === 200).map((r) => r.body.version as number);
      assert.ok(ok.length >= 1);
      assert.equal(new Set(ok).size, ok.length, 'no version handed out twice');
      assert.deepEqual((await api('GET', '/api/v1/templates/racy')).body.versions, Array.from({ length: ok.length + 1 }, (_, i) => i + 1));
    });

    test('templates appear in the OpenAPI document', async () => {
      const doc = (await api('GET', '/api/v1/openapi.json')).body;
      assert.ok(doc.paths['/api/v1/templates'].post);
      assert.ok(doc.paths['/api/v1/templates/{id}'].put);
      assert.ok(doc.paths['/api/v1/jobs/{id}/dependencies'].post);
    });
  });
}
