// Step 3: load the model, predict the held-out test set, report accuracy and a confusion matrix.
import { readFileSync } from 'node:fs';
import { RandomForestClassifier } from 'ml-random-forest';
import { output, params } from './common.mjs';

const p = params();
const test = JSON.parse(readFileSync(p.test_path, 'utf8'));
const rf = RandomForestClassifier.load(JSON.parse(readFileSync(p.model_path, 'utf8')));
const pred = rf.predict(test.X);
const k = test.classes.length;
const confusion = Array.from({ length: k }, () => new Array(k).fill(0));
let correct = 0;
pred.forEach((v, i) => {
  confusion[test.y[i]][v]++;
  if (v === test.y[i]) correct++;
});
const accuracy = correct / test.y.length;
console.log(`test accuracy ${accuracy.toFixed(4)} (${correct}/${test.y.length})`);
output({ accuracy, correct, total: test.y.length, classes: test.classes, confusion });
