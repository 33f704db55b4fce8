/**
 * Changing the configuration of a running cluster (DESIGN.md 3): what a new file changes and which
 * restart that needs (pure), and installing it on this server with its generation number.
 */
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TandemError, validateConfigText, writeFileAtomic, type Config } from '@tandem/core';

/**
 * What a change needs before every server runs it. Each daemon reads the configuration when it
 * starts, so a change takes effect only when the daemons restart:
 * - `restart-daemons`: only groups or monitors changed; the servers may restart their daemons
 *   one at a time, and the groups move between them meanwhile.
 * - `restart-cluster`: the cluster settings (heartbeat, ports, keys, partition, emergency) or the
 *   servers changed; they must be the same on every server at once, so every server stops first.
 */
export type ChangeLevel = 'none' | 'restart-daemons' | 'restart-cluster';

export interface ConfigDiff {
  /** one readable line per changed setting, by path: `groups[web].resources[app].timeout: 60000 ms -> 30000 ms` */
  changes: string[];
  level: ChangeLevel;
}

/** The sections whose changes must reach every server at the same time. */
const CLUSTER_WIDE: ReadonlySet<keyof Config> = new Set(['cluster', 'servers']);

/**
 * Fields of the normalised configuration that no one writes: each is computed from settings that
 * are compared themselves (a resource's group, a monitor's recovery kind and group, the quorum lease).
 */
const DERIVED = new Set(['group', 'kind', 'quorumLeaseMs']);

/** Normalised names that differ from the key in cluster.yaml (besides the `Ms` suffix of durations). */
const YAML_NAMES: Record<string, string> = { delayWarningPercent: 'delayWarning', methods: 'method' };

const settingName = (key: string): string => YAML_NAMES[key] ?? (key.endsWith('Ms') ? key.slice(0, -2) : key);

type Named = { name: string } & Record<string, unknown>;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNamedList = (v: unknown): v is Named[] => Array.isArray(v) && v.every((i) => isRecord(i) && typeof i['name'] === 'string');

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A value as the operator reads it: durations with their unit, words bare, text with spaces quoted. */
function show(value: unknown, key: string | undefined): string {
  if (value === undefined) return '(unset)';
  // A literal secret stays out of terminals and logs; a `file:` reference is only a path.
  if (key === 'secret' && !(typeof value === 'string' && value.startsWith('file:'))) return '(hidden)';
  if (typeof value === 'number' && key?.endsWith('Ms')) return `${value} ms`;
  if (typeof value === 'string') return /^[^\s,[\]{}"']+$/.test(value) ? value : JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => show(v, undefined)).join(', ')}]`;
  if (isRecord(value)) return JSON.stringify(value);
  return String(value);
}

/** Appends one line per difference between `before` and `after` at `path`. */
function compare(path: string, key: string | undefined, before: unknown, after: unknown, out: string[]): void {
  if (isNamedList(before) && isNamedList(after) && (before.length > 0 || after.length > 0)) {
    compareNamed(path, before, after, out);
  } else if (isRecord(before) && isRecord(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
    for (const k of keys) {
      if (!DERIVED.has(k)) compare(`${path}.${settingName(k)}`, k, before[k], after[k], out);
    }
  } else if (!sameValue(before, after)) {
    out.push(`${path}: ${show(before, key)} -> ${show(after, key)}`);
  }
}

/** Lists of named items (servers, groups, resources, monitors) are matched by name, not by position. */
function compareNamed(path: string, before: Named[], after: Named[], out: string[]): void {
  const old = new Map(before.map((i) => [i.name, i]));
  const next = new Map(after.map((i) => [i.name, i]));
  for (const i of before) if (!next.has(i.name)) out.push(`${path}: - ${i.name}`);
  for (const i of after) if (!old.has(i.name)) out.push(`${path}: + ${i.name}`);
  // Order is a setting too: servers' order makes the coordinator, and the first of a policy is home.
  const oldOrder = before.map((i) => i.name).filter((n) => next.has(n));
  const nextOrder = after.map((i) => i.name).filter((n) => old.has(n));
  if (!sameValue(oldOrder, nextOrder)) out.push(`${path}: order ${show(oldOrder, undefined)} -> ${show(nextOrder, undefined)}`);
  for (const i of after) {
    const was = old.get(i.name);
    if (was) compare(`${path}[${i.name}]`, undefined, was, i, out);
  }
}

/** What applying `next` over the `running` configuration changes, setting by setting, and what it needs. */
export function diffConfigs(running: Config, next: Config): ConfigDiff {
  const changes: string[] = [];
  let level: ChangeLevel = 'none';
  for (const section of ['cluster', 'servers', 'groups', 'monitors'] as const) {
    const lines: string[] = [];
    compare(section, undefined, running[section], next[section], lines);
    if (lines.length === 0) continue;
    changes.push(...lines);
    if (CLUSTER_WIDE.has(section)) level = 'restart-cluster';
    else if (level === 'none') level = 'restart-daemons';
  }
  return { changes, level };
}

/** The generation an apply gives the file: one more than the highest any server has installed. */
export function nextGeneration(generations: number[]): number {
  return Math.max(0, ...generations) + 1;
}

export function configGenerationPath(stateDir: string): string {
  return join(stateDir, 'config-generation');
}

/** The generation of the file installed on this server; 0 when none was ever applied (or the file is unreadable). */
export function readGeneration(stateDir: string): number {
  let text: string;
  try {
    text = readFileSync(configGenerationPath(stateDir), 'utf8').trim();
  } catch {
    return 0;
  }
  return /^\d{1,15}$/.test(text) ? Number(text) : 0;
}

/**
 * Installs `text` as this server's configuration with `generation`: the configuration file first
 * (atomically, keeping its permissions), then the generation. Nothing changes when the text is
 * invalid (BAD_REQUEST listing the problems) or the generation is not newer than the installed
 * one (CONFLICT). A crash between the two writes leaves the older generation, so the same apply
 * may install again.
 */
export function installConfig(configPath: string, stateDir: string, text: string, generation: number): void {
  if (!Number.isSafeInteger(generation) || generation < 1) {
    throw new TandemError('BAD_REQUEST', `configuration generation ${generation} is not a positive whole number`);
  }
  const v = validateConfigText(text);
  if (!v.ok) {
    const count = `${v.problems.length} problem${v.problems.length === 1 ? '' : 's'}`;
    throw new TandemError('BAD_REQUEST', `configuration generation ${generation} is invalid (${count}): ${v.problems.join('; ')}`);
  }
  const installed = readGeneration(stateDir);
  if (generation <= installed) {
    throw new TandemError('CONFLICT', `configuration generation ${generation} is not newer than generation ${installed} installed here`);
  }
  let mode: number | undefined;
  try {
    mode = statSync(configPath).mode & 0o7777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new TandemError('INTERNAL', `cannot read ${configPath}: ${(err as Error).message}`, {}, { cause: err });
    }
  }
  try {
    writeFileAtomic(configPath, text, mode);
    mkdirSync(stateDir, { recursive: true });
    writeFileAtomic(configGenerationPath(stateDir), `${generation}\n`);
  } catch (err) {
    throw new TandemError(
      'INTERNAL',
      `cannot install configuration generation ${generation}: ${(err as Error).message}`,
      {},
      { cause: err },
    );
  }
}
