// Step 2: train a random forest (ml-random-forest) on the training set and save the model.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RandomForestClassifier } from 'ml-random-forest';
import { output, params, workDir } from './common.mjs';

const p = params();
const train = JSON.parse(readFileSync(p.train_path, 'utf8'));
const rf = new RandomForestClassifier({
  nEstimators: Number(p.n_estimators ?? 50),
  maxFeatures: 0.8,
  replacement: true,
  seed: Number(p.seed ?? 42),
  treeOptions: { maxDepth: Number(p.max_depth ?? 5) },
});
const t0 = Date.now();
rf.train(train.X, train.y);
const modelPath = join(workDir(p), 'model.json');
writeFileSync(modelPath, JSON.stringify(rf.toJSON()));
const trainAcc = rf.predict(train.X).filter((v, i) => v === train.y[i]).length / train.y.length;
console.log(`trained ${p.n_estimators ?? 50} trees in ${Date.now() - t0} ms; training accuracy ${trainAcc.toFixed(3)}`);
output({ model_path: modelPath, train_accuracy: trainAcc });
