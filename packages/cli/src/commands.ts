/**
 * What each `tandem` command does: one request to the local tandem-nm (protobuf over ZeroMQ,
 * `callOnce` on nm.rpc), then the answer printed. Failures are thrown and reported by main.ts.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { TandemError, callOnce, localServerName, resolvePaths, validateConfigForServer, validateConfigText } from '@tandem/core';
import { alertToJson, clusterStatusToJson, v1, type Reply, type RequestInit } from '@tandem/protocol';
import { errorLine } from './errors.js';
import { formatAlerts, formatProblems, formatStatus, toJsonText } from './format.js';
import { generateKeys } from './keys.js';

type RequestBody = Omit<RequestInit, 'id' | 'deadlineMs' | 'revision' | 'origin'>;

/** Queries answer at once; operations may wait for start and stop scripts. */
export const QUERY_TIMEOUT_MS = 5000;
export const OPERATION_TIMEOUT_MS = 600_000;
export const LOGS_TIMEOUT_MS = 180_000;

export interface CommonOptions {
  /** --timeout in ms; each command has its own default */
  timeout?: number | undefined;
}

async function ask(body: RequestBody, timeoutMs: number): Promise<Reply> {
  return callOnce(resolvePaths().rpc('nm'), body, { origin: 'cli', name: 'tandem-nm', timeoutMs });
}

const print = (text: string): void => void process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

function statusPage(reply: Reply, json: boolean): string {
  if (!reply.status) throw new TandemError('INTERNAL', 'tandem-nm answered status without a status');
  return json ? toJsonText(clusterStatusToJson(reply.status)) : formatStatus(reply.status);
}

export async function status(opts: CommonOptions & { json: boolean; watchIntervalMs?: number | undefined }): Promise<void> {
  const timeoutMs = opts.timeout ?? QUERY_TIMEOUT_MS;
  if (opts.watchIntervalMs === undefined) {
    print(statusPage(await ask({ status: {} }, timeoutMs), opts.json));
    return;
  }
  // Ctrl-C ends the watch between two requests, so the socket of the one in flight closes normally.
  let stopping = false;
  let wake = (): void => undefined;
  const onInterrupt = (): void => {
    stopping = true;
    wake();
  };
  process.on('SIGINT', onInterrupt);
  try {
    while (!stopping) {
      let page: string;
      try {
        page = statusPage(await ask({ status: {} }, timeoutMs), opts.json);
      } catch (err) {
        if (!(err instanceof TandemError)) throw err;
        page = `${errorLine(err)}\n`;
      }
      if (stopping) break;
      const clear = process.stdout.isTTY ? '\x1b[H\x1b[2J' : '';
      process.stdout.write(`${clear}every ${opts.watchIntervalMs} ms, ${new Date().toLocaleTimeString()} (Ctrl-C to stop)\n\n${page}`);
      await new Promise<void>((done) => {
        const timer = setTimeout(done, opts.watchIntervalMs);
        wake = () => {
          clearTimeout(timer);
          done();
        };
      });
    }
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}

async function operation(body: RequestBody, what: string, opts: CommonOptions): Promise<void> {
  const reply = await ask(body, opts.timeout ?? OPERATION_TIMEOUT_MS);
  print(reply.ack?.message || `${what}: done`);
}

export const CLUSTER_ACTIONS = {
  start: v1.ClusterAction.CLUSTER_ACTION_START,
  stop: v1.ClusterAction.CLUSTER_ACTION_STOP,
  suspend: v1.ClusterAction.CLUSTER_ACTION_SUSPEND,
  resume: v1.ClusterAction.CLUSTER_ACTION_RESUME,
} as const;

export function cluster(action: keyof typeof CLUSTER_ACTIONS, opts: CommonOptions): Promise<void> {
  return operation({ cluster: { action: CLUSTER_ACTIONS[action] } }, `cluster ${action}`, opts);
}

export const GROUP_ACTIONS = {
  start: v1.GroupAction.GROUP_ACTION_START,
  stop: v1.GroupAction.GROUP_ACTION_STOP,
  restart: v1.GroupAction.GROUP_ACTION_RESTART,
  move: v1.GroupAction.GROUP_ACTION_MOVE,
  failover: v1.GroupAction.GROUP_ACTION_FAILOVER,
} as const;

export function group(
  action: keyof typeof GROUP_ACTIONS,
  name: string,
  opts: CommonOptions & { server?: string | undefined },
): Promise<void> {
  const body = { group: { action: GROUP_ACTIONS[action], group: name, server: opts.server ?? '', cause: v1.Cause.CAUSE_OPERATOR } };
  return operation(body, `group ${name} ${action}`, opts);
}

export const RESOURCE_ACTIONS = {
  start: v1.ResourceAction.RESOURCE_ACTION_START,
  stop: v1.ResourceAction.RESOURCE_ACTION_STOP,
  restart: v1.ResourceAction.RESOURCE_ACTION_RESTART,
} as const;

export function resource(
  action: keyof typeof RESOURCE_ACTIONS,
  ref: { group: string; resource: string },
  opts: CommonOptions,
): Promise<void> {
  const body = { resource: { action: RESOURCE_ACTIONS[action], group: ref.group, resource: ref.resource, cause: v1.Cause.CAUSE_OPERATOR } };
  return operation(body, `resource ${ref.group}/${ref.resource} ${action}`, opts);
}

export const MONITOR_ACTIONS = {
  suspend: v1.MonitorAction.MONITOR_ACTION_SUSPEND,
  resume: v1.MonitorAction.MONITOR_ACTION_RESUME,
  reset: v1.MonitorAction.MONITOR_ACTION_RESET,
} as const;

export function monitor(action: keyof typeof MONITOR_ACTIONS, names: string[], opts: CommonOptions): Promise<void> {
  const which = names.length > 0 ? `monitor ${names.join(', ')}` : 'every monitor';
  return operation({ monitor: { action: MONITOR_ACTIONS[action], names } }, `${which} ${action}`, opts);
}

/**
 * Validates FILE (default: the configuration tandem-nm uses) with tandem-nm, or locally when it
 * is not running. A failed validation prints each problem on its own line and exits 1.
 */
export async function configValidate(file: string | undefined, opts: CommonOptions & { local?: boolean }): Promise<void> {
  const path = file ?? resolvePaths().config;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new TandemError('NOT_FOUND', `cannot read ${path}: ${(err as Error).message}`);
  }
  let problems: string[];
  let note = '';
  if (opts.local) {
    // What a server checks before it starts: the file, and that this server is in it.
    const v = validateConfigForServer(text, localServerName());
    problems = v.ok ? [] : v.problems;
  } else {
    try {
      const reply = await ask({ config: { action: v1.ConfigAction.CONFIG_ACTION_VALIDATE, yaml: text } }, opts.timeout ?? QUERY_TIMEOUT_MS);
      problems = reply.config?.problems ?? [];
    } catch (err) {
      if (!(err instanceof TandemError && err.code === 'UNAVAILABLE')) throw err;
      const v = validateConfigText(text);
      problems = v.ok ? [] : v.problems;
      note = ' (validated locally: tandem-nm is not running)';
    }
  }
  if (problems.length === 0) {
    print(`configuration ${path} is valid${note}`);
    return;
  }
  process.stderr.write(`tandem: ${formatProblems(path, problems)}${note ? `${note.trim()}\n` : ''}`);
  process.exitCode = 1;
}

export async function configShow(opts: CommonOptions): Promise<void> {
  const reply = await ask({ config: { action: v1.ConfigAction.CONFIG_ACTION_SHOW } }, opts.timeout ?? QUERY_TIMEOUT_MS);
  print(`# ${reply.config?.path ?? ''}\n${reply.config?.yaml ?? ''}`);
}

export async function events(opts: CommonOptions & { limit?: number | undefined; json: boolean }): Promise<void> {
  const reply = await ask({ events: { limit: opts.limit ?? 0 } }, opts.timeout ?? QUERY_TIMEOUT_MS);
  const alerts = reply.events?.alerts ?? [];
  print(opts.json ? toJsonText(alerts.map(alertToJson)) : formatAlerts(alerts));
}

export async function logsCollect(opts: CommonOptions & { output?: string | undefined }): Promise<void> {
  // tandem-nm writes the file: a relative path means the operator's directory, not nm's.
  const outputPath = opts.output ? resolve(opts.output) : '';
  const reply = await ask({ logsCollect: { outputPath } }, opts.timeout ?? LOGS_TIMEOUT_MS);
  print(`wrote ${reply.logs?.path ?? outputPath} (${reply.logs?.bytes ?? 0} bytes)`);
}

export function keysGenerate(opts: { force: boolean }): void {
  const keys = generateKeys(resolvePaths(), opts.force);
  print(`wrote ${keys.secretPath} (secret, mode 0600) and ${keys.publicPath}`);
  print(`add this line to this server's entry in cluster.yaml, on every server:\n    publicKey: "${keys.publicKey}"`);
}
