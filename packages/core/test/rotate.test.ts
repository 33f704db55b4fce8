import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { AlertLog, readAlerts, rotateIfLarge } from '@tandem/core';

t.test('a file that reached its size limit is rotated to .1, a smaller one is left alone', async (t) => {
  const dir = mkdtempSync('/tmp/tnd-rot.');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'app.log');
  rotateIfLarge(path, 10); // no file yet: nothing to do, no error
  writeFileSync(path, 'short');
  rotateIfLarge(path, 10);
  t.equal(readFileSync(path, 'utf8'), 'short');
  writeFileSync(path, 'long enough to rotate');
  rotateIfLarge(path, 10);
  t.notOk(existsSync(path));
  t.equal(readFileSync(`${path}.1`, 'utf8'), 'long enough to rotate');
});

t.test('an alert that cannot be written is counted, not thrown', async (t) => {
  const dir = mkdtempSync('/tmp/tnd-rot.');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const log = new AlertLog(join(dir, 'alerts.log'), 'node1', 'test');
  log.raise('TND-NM-0001', 'written');
  t.equal(readAlerts(join(dir, 'alerts.log')).length, 1);
  rmSync(dir, { recursive: true, force: true }); // the directory is gone: the write fails
  t.doesNotThrow(() => log.raise('TND-NM-0002', 'lost'));
  t.equal(log.writeFailures, 1);
});
