/**
 * What each `tandem` command does: one request to the local tandem-nm (protobuf over ZeroMQ,
 * `callOnce` on nm.rpc), then the answer printed. With `--node NAME` the request names that
 * server, and the local tandem-nm forwards it to NAME's. Failures are thrown and reported by main.ts.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  TandemError,
  callOnce,
  configWarnings,
  localServerName,
  resolvePaths,
  validateConfigForServer,
  validateConfigText,
} from '@tandem/core';
import { alertToJson, clusterStatusToJson, v1, type Reply, type RequestInit } from '@tandem/protocol';
import { UsageError, errorLine } from './errors.js';
import {
  configReplyToJson,
  formatAlerts,
  formatConfigApply,
  formatConfigDiff,
  formatProblems,
  formatStatus,
  toJsonText,
} from './format.js';
import { generateKeys } from './keys.js';

type RequestBody = Omit<RequestInit, 'id' | 'deadlineMs' | 'revision' | 'origin'>;

/** Queries answer at once; operations may wait for start and stop scripts. */
export const QUERY_TIMEOUT_MS = 5000;
export const OPERATION_TIMEOUT_MS = 600_000;
export const LOGS_TIMEOUT_MS = 180_000;
/** An apply waits for every server to install the file. */
export const APPLY_TIMEOUT_MS = 30_000;

export interface CommonOptions {
  /** --timeout in ms; each command has its own default */
  timeout?: number | undefined;
  /** --node: the server whose node manager answers (forwarded by the local one); unset = this server's */
  node?: string | undefined;
}

async function ask(body: RequestBody, opts: CommonOptions, defaultTimeoutMs: number): Promise<Reply> {
  const request = opts.node ? { ...body, node: opts.node } : body;
  return callOnce(resolvePaths().rpc('nm'), request, { origin: 'cli', name: 'tandem-nm', timeoutMs: opts.timeout ?? defaultTimeoutMs });
}

const print = (text: string): void => void process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

function statusPage(reply: Reply, json: boolean): string {
  if (!reply.status) throw new TandemError('INTERNAL', 'tandem-nm answered status without a status');
  return json ? toJsonText(clusterStatusToJson(reply.status)) : formatStatus(reply.status);
}

export async function status(opts: CommonOptions & { json: boolean; watchIntervalMs?: number | undefined }): Promise<void> {
  if (opts.watchIntervalMs === undefined) {
    print(statusPage(await ask({ status: {} }, opts, QUERY_TIMEOUT_MS), opts.json));
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
        page = statusPage(await ask({ status: {} }, opts, QUERY_TIMEOUT_MS), opts.json);
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
  const reply = await ask(body, opts, OPERATION_TIMEOUT_MS);
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

/** `tandem cluster shutdown [--reboot]`: every server stops its cluster service, then shuts down. */
export function clusterShutdown(reboot: boolean, opts: CommonOptions): Promise<void> {
  return operation({ cluster: { action: v1.ClusterAction.CLUSTER_ACTION_SHUTDOWN, reboot } }, 'cluster shutdown', opts);
}

/** `tandem node return NAME`: a server that went down without a clean stop, waiting isolated, rejoins. */
export function nodeReturn(server: string, opts: CommonOptions): Promise<void> {
  return operation({ nodeCommand: { action: v1.NodeAction.NODE_ACTION_RETURN, server } }, 'node return', opts);
}

/** `tandem node down [NAME] [--reboot]`: the server's groups move away, then it shuts down. */
export function nodeDown(server: string | undefined, reboot: boolean, opts: CommonOptions): Promise<void> {
  return operation({ nodeCommand: { action: v1.NodeAction.NODE_ACTION_DOWN, server: server ?? '', reboot } }, 'node down', opts);
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
  if (opts.local && opts.node) throw new UsageError('--local validates on this server: it does not go with --node');
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
      const reply = await ask({ config: { action: v1.ConfigAction.CONFIG_ACTION_VALIDATE, yaml: text } }, opts, QUERY_TIMEOUT_MS);
      problems = reply.config?.problems ?? [];
    } catch (err) {
      // With --node the operator asked for that server's answer: no local stand-in.
      if (!(err instanceof TandemError && err.code === 'UNAVAILABLE') || opts.node) throw err;
      const v = validateConfigText(text);
      problems = v.ok ? [] : v.problems;
      note = ' (validated locally: tandem-nm is not running)';
    }
  }
  if (problems.length === 0) {
    print(`configuration ${path} is valid${note}`);
    const v = validateConfigText(text);
    if (v.ok) for (const warning of configWarnings(v.config)) print(`warning: ${warning}`);
    return;
  }
  process.stderr.write(`tandem: ${formatProblems(path, problems)}${note ? `${note.trim()}\n` : ''}`);
  process.exitCode = 1;
}

/** The configuration file the node manager reads, with its generation (0 until the first `config apply`). */
export async function configShow(opts: CommonOptions & { json?: boolean }): Promise<void> {
  const reply = await ask({ config: { action: v1.ConfigAction.CONFIG_ACTION_SHOW } }, opts, QUERY_TIMEOUT_MS);
  const { path = '', yaml = '', generation = 0 } = reply.config ?? {};
  if (opts.json) print(JSON.stringify({ path, generation: Number(generation), yaml }, null, 2));
  else print(`# ${path} (generation ${Number(generation)})\n${yaml}`);
}

/** The new configuration the operator names; a file that cannot be read is a mistake on the command line. */
function readNewConfig(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new UsageError(`cannot read ${file}: ${why}`);
  }
}

/**
 * Sends FILE to tandem-nm for a diff or an apply and prints the answer. A file that does not
 * validate prints each problem and exits 1; nothing was installed.
 */
async function configChange(action: 'diff' | 'apply', file: string, opts: CommonOptions & { json: boolean }): Promise<void> {
  const yaml = readNewConfig(file);
  const wire = action === 'diff' ? v1.ConfigAction.CONFIG_ACTION_DIFF : v1.ConfigAction.CONFIG_ACTION_APPLY;
  const reply = (await ask({ config: { action: wire, yaml } }, opts, action === 'diff' ? QUERY_TIMEOUT_MS : APPLY_TIMEOUT_MS)).config;
  if (!reply) throw new TandemError('INTERNAL', `tandem-nm answered config ${action} without a configuration reply`);
  const problems = reply.problems ?? [];
  if (problems.length > 0) process.exitCode = 1;
  if (opts.json) print(toJsonText(configReplyToJson(reply)));
  else if (problems.length > 0) process.stderr.write(`tandem: ${formatProblems(file, problems)}`);
  else print(action === 'diff' ? formatConfigDiff(reply) : formatConfigApply(reply));
}

export function configDiff(file: string, opts: CommonOptions & { json: boolean }): Promise<void> {
  return configChange('diff', file, opts);
}

export function configApply(file: string, opts: CommonOptions & { json: boolean }): Promise<void> {
  return configChange('apply', file, opts);
}

export async function events(opts: CommonOptions & { limit?: number | undefined; json: boolean }): Promise<void> {
  const reply = await ask({ events: { limit: opts.limit ?? 0 } }, opts, QUERY_TIMEOUT_MS);
  const alerts = reply.events?.alerts ?? [];
  print(opts.json ? toJsonText(alerts.map(alertToJson)) : formatAlerts(alerts));
}

export async function logsCollect(opts: CommonOptions & { output?: string | undefined }): Promise<void> {
  // tandem-nm writes the file: a relative path means the operator's directory, not nm's.
  const outputPath = opts.output ? resolve(opts.output) : '';
  const reply = await ask({ logsCollect: { outputPath } }, opts, LOGS_TIMEOUT_MS);
  print(`wrote ${reply.logs?.path ?? outputPath} (${reply.logs?.bytes ?? 0} bytes)`);
}

export function keysGenerate(opts: { force: boolean }): void {
  const keys = generateKeys(resolvePaths(), opts.force);
  print(`wrote ${keys.secretPath} (secret, mode 0600) and ${keys.publicPath}`);
  print(`add this line to this server's entry in cluster.yaml, on every server:\n    publicKey: "${keys.publicKey}"`);
}
