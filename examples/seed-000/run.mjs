#!/usr/bin/env node
/**
 * `node examples/seed-000/run.mjs`: seed 000 end to end (see README.md).
 * Starts Courier, the gateway and three instances from this checkout, runs
 * the five steps, prints what happens, and exits 1 if an expectation fails.
 */
import { register } from 'tsx/esm/api';

register();
const { runScenario } = await import('./scenario.ts');
const { checkObservations } = await import('./expectations.ts');

const started = Date.now();
try {
  const observations = await runScenario({ log: (line) => console.log(line) });
  const failures = checkObservations(observations);
  console.log(`\nDone in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
  if (failures.length > 0) {
    console.log(`Not as expected:\n  ${failures.join('\n  ')}`);
    process.exitCode = 1;
  } else console.log('Every task was handled exactly once, as described.');
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
}
