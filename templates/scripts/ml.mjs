// Simulated ML work for the built-in templates: data preparation, training, evaluation,
// storage, preprocessing, tuning. Usage: node ml.mjs <step>  (GANTRY_PARAMETERS holds the parameters)
import { log, maybeFail, output, pace, params, rng, sleep, step } from './lib.mjs';

const p = params();
const name = step();
const rand = rng(JSON.stringify(p) + name);
const unit = pace(p);
maybeFail(p, name);

const gpus = (process.env.CUDA_VISIBLE_DEVICES || '').split(',').filter(Boolean);

switch (name) {
  case 'data_preparation':
  case 'preprocess': {
    const rows = Number(p.rows ?? 10000);
    const dataset = p.dataset_name ?? p.dataset ?? p.dataset_path ?? 'dataset';
    log(`loading ${dataset}`);
    for (const s of p.preprocessing_steps ?? ['clean', 'normalize', 'split']) {
      await sleep(unit);
      log(`preprocessing: ${s}`);
    }
    const test = Number(p.test_split ?? 0.2);
    log(`prepared ${rows} rows: ${Math.round(rows * (1 - test))} train / ${Math.round(rows * test)} test`);
    output({ dataset, rows, train_rows: Math.round(rows * (1 - test)), test_rows: Math.round(rows * test), features_path: `/tmp/gantry/${dataset}.features` });
    break;
  }
  case 'model_training':
  case 'train': {
    const epochs = Math.min(Number(p.max_epochs ?? p.epochs ?? 5), 20);
    const model = p.model ?? p.model_name ?? p.algorithm ?? 'model';
    log(`training ${model} (${p.algorithm ?? 'default'}) on ${gpus.length ? `GPUs ${gpus.join(',')}` : 'CPU'}, ${epochs} epochs, batch ${p.batch_size ?? 32}, lr ${p.learning_rate ?? 0.001}`);
    let loss = 1.2 + rand();
    for (let e = 1; e <= epochs; e++) {
      await sleep(unit);
      loss *= 0.7 + rand() * 0.1;
      log(`epoch ${e}/${epochs} loss=${loss.toFixed(4)}`);
    }
    output({ model, final_loss: Number(loss.toFixed(4)), epochs, model_path: `/tmp/gantry/models/${model}.bin` });
    break;
  }
  case 'model_evaluation':
  case 'evaluate': {
    await sleep(unit);
    const accuracy = Number((0.85 + rand() * 0.12).toFixed(4));
    log(`evaluated on ${Math.round(Number(p.test_split ?? 0.2) * 100)}% held out: accuracy=${accuracy}`);
    output({ accuracy, f1: Number((accuracy - 0.02).toFixed(4)), metric: p.metric ?? 'accuracy' });
    break;
  }
  case 'model_storage': {
    await sleep(unit);
    const where = `${p.model_registry ?? 'local'}://${p.model ?? p.algorithm ?? 'model'}/v${p.model_version ?? 1}`;
    log(`stored model at ${where}`);
    output({ model_uri: where });
    break;
  }
  case 'tune': {
    const trials = Math.min(Number(p.trials ?? 3), 20);
    let best = null;
    for (let t = 1; t <= trials; t++) {
      await sleep(unit);
      const score = Number((0.8 + rand() * 0.15).toFixed(4));
      log(`trial ${t}/${trials} ${p.algorithm} C=${p.C ?? '-'} max_depth=${p.max_depth ?? '-'} score=${score}`);
      if (!best || score > best.score) best = { trial: t, score };
    }
    output({ algorithm: p.algorithm, C: p.C ?? null, best_score: best.score, best_trial: best.trial });
    break;
  }
  default:
    process.stderr.write(`ml.mjs: unknown step '${name}'\n`);
    process.exit(2);
}
