/**
 * `tandem logs collect`: one .tar.gz holding the logs directory, the configuration file and a
 * status.json snapshot, made by the system tar with a bounded run time.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { TandemError } from '@tandem/core';

export const TAR_TIMEOUT_MS = 120_000;

/** `tandem-logs-node1-20240102T030405Z.tar.gz` beside the logs directory. */
export function defaultArchivePath(logsDir: string, server: string, nowMs: number): string {
  const stamp = new Date(nowMs)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return join(dirname(logsDir), `tandem-logs-${server}-${stamp}.tar.gz`);
}

export interface CollectInput {
  logsDir: string;
  configPath: string;
  statusJson: string;
  outputPath: string;
}

function runTar(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('tar', args, { timeout: TAR_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      // GNU tar exits 1 when a file changed while it was read: the daemons keep logging, the archive is still good.
      if (err.code === 1) return resolve();
      const why = err.killed ? `timed out after ${TAR_TIMEOUT_MS} ms` : stderr.trim().split('\n')[0] || err.message;
      reject(new TandemError('INTERNAL', `tar failed: ${why}`));
    });
  });
}

/** Writes the archive and returns its size in bytes. */
export async function collectLogs(input: CollectInput): Promise<number> {
  if (!isAbsolute(input.outputPath)) throw new TandemError('BAD_REQUEST', `output path must be absolute: ${input.outputPath}`);
  const staging = mkdtempSync(join(tmpdir(), 'tandem-logs-'));
  try {
    writeFileSync(join(staging, 'status.json'), input.statusJson);
    const extra = ['status.json'];
    try {
      copyFileSync(input.configPath, join(staging, basename(input.configPath)));
      extra.push(basename(input.configPath));
    } catch (err) {
      writeFileSync(join(staging, 'config-missing.txt'), `cannot read ${input.configPath}: ${(err as Error).message}\n`);
      extra.push('config-missing.txt');
    }
    await runTar([
      '-czf',
      input.outputPath,
      '--warning=no-file-changed',
      '-C',
      dirname(input.logsDir),
      basename(input.logsDir),
      '-C',
      staging,
      ...extra,
    ]);
    return statSync(input.outputPath).size;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
