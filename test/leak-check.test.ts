/**
 * The leak check (test/helpers/leak-check.ts) run the way scripts/run-tests.mjs
 * runs it, on a fixture that leaks and one that does not.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function runFixture(name: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--import', './test/helpers/leak-check.ts', '--test', '--test-force-exit', '--test-reporter=spec', `test/fixtures/${name}`],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_TEST_CONTEXT: undefined } },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

describe('leak check', () => {
  it('fails a file whose passing test leaves an interval and a listening server open, naming both', async () => {
    const { code, output } = await runFixture('leaky.fixture.ts');
    assert.notEqual(code, 0, output);
    assert.match(output, /leak check: .*leaky\.fixture\.ts left 2 resource\(s\) open/);
    assert.match(output, /setInterval timer \(every 60000 ms\)/);
    assert.match(output, /listening TCP server \(127\.0\.0\.1:\d+\)/);
    assert.match(output, /leaky\.fixture\.ts:\d+:\d+/, 'the creating line is named');
  });

  it('passes a file that closes what it opened', async () => {
    const { code, output } = await runFixture('clean.fixture.ts');
    assert.equal(code, 0, output);
    assert.doesNotMatch(output, /leak check/);
  });
});
