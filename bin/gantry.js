#!/usr/bin/env node
// Plain JavaScript so it runs on any Node: an old one gets this line instead of a syntax error
// from the TypeScript sources, which need type stripping (unflagged since 22.18 and 23.6).
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (!(major >= 24 || (major === 23 && minor >= 6) || (major === 22 && minor >= 18))) {
  process.stderr.write(`gantry: needs Node.js 22.18 or newer; this is ${process.version}\n`);
  process.exit(1);
}
const { main } = await import('../src/cli/main.ts');
await main(process.argv);
