import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { fixedSnapshot } from '../testing/snapshot.js';
import { nodeVersion } from '../vitals/runtime.js';
import { renderPrometheus } from './prometheus.js';

// The exact /metrics bytes of a fixed window, as Prometheus text and as OpenMetrics. A renderer change that moves a
// byte fails here; when the change is meant, regenerate with EKG_UPDATE_GOLDEN=1 and review the diff.
const golden = new URL('../../src/formats/golden/', import.meta.url);

/** The one machine-dependent line: the running Node's version, written as v0.0.0. */
const portable = (text: string) =>
  text.replace(
    `version="${nodeVersion.version}",major="${nodeVersion.major}",minor="${nodeVersion.minor}",patch="${nodeVersion.patch}"`,
    'version="v0.0.0",major="0",minor="0",patch="0"',
  );

for (const [file, open] of [
  ['metrics.prom', false],
  ['metrics.openmetrics', true],
] as const) {
  test(`/metrics of a fixed window is byte-identical to golden/${file}`, () => {
    const text = portable(renderPrometheus(fixedSnapshot(), open));
    if (process.env.EKG_UPDATE_GOLDEN) {
      mkdirSync(golden, { recursive: true });
      writeFileSync(new URL(file, golden), text);
    }
    assert.equal(text, readFileSync(new URL(file, golden), 'utf8'));
  });
}
