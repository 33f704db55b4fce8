/** Command-line values that need more than yargs' types: resource references and intervals. */
import { parseDuration } from '@tandem/core';
import { UsageError } from './errors.js';

/** `app --group web` or `web/app` → { group, resource }. */
export function parseResourceRef(name: string, group: string | undefined): { group: string; resource: string } {
  const slash = name.indexOf('/');
  if (slash >= 0) {
    const fromName = name.slice(0, slash);
    const resource = name.slice(slash + 1);
    if (!fromName || !resource || resource.includes('/')) throw new UsageError(`resource "${name}" must be GROUP/RESOURCE`);
    if (group !== undefined && group !== fromName) throw new UsageError(`resource ${name} is in group ${fromName}, not ${group}`);
    return { group: fromName, resource };
  }
  if (!group) throw new UsageError(`resource ${name} needs its group: --group GROUP or GROUP/RESOURCE`);
  return { group, resource: name };
}

/** The witness service's default port (DESIGN.md 7). */
export const WITNESS_PORT = 29100;

/** A duration option (`--ttl 30s` → 30000), at least 100 ms; a usage error names the option. */
export function parseDurationOption(option: string, text: string): number {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch {
    throw new UsageError(`--${option} ${text}: expected a duration like 500ms, 2s or 1m`);
  }
  if (ms < 100) throw new UsageError(`--${option} ${text}: must be at least 100ms`);
  return ms;
}

/** `--interval 1s` → 1000; at least 100 ms so a watch cannot flood tandem-nm. */
export const parseInterval = (text: string): number => parseDurationOption('interval', text);

/** Server names as cluster.yaml allows them. */
const SERVER_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,62}$/;

/** `--node node2` → `node2`; absent stays absent. Whether the server exists is tandem-nm's answer. */
export function parseNode(node: string | undefined): string | undefined {
  if (node === undefined) return undefined;
  if (!SERVER_NAME.test(node)) throw new UsageError(`--node ${JSON.stringify(node)}: expected a server name from cluster.yaml`);
  return node;
}
