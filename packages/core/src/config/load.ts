/**
 * Reads, validates and normalises cluster.yaml. Validation has two layers: the JSON Schema
 * (types, unknown keys, ranges) and the cross-references (names, dependencies, targets).
 * Every problem names its path, like `groups[1].resources[0].timeout`, and what was expected.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { ErrorObject } from 'ajv';
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import { DURATION_PATTERN, parseDuration } from '../duration.js';

const DURATION_RE = new RegExp(DURATION_PATTERN);
import { TandemError } from '../errors.js';
import type { Config, GroupConfig, MonitorConfig, ResourceConfig } from './types.js';
import validateSchema from './validator.js';

// yaml is loaded on first use, so that importing @tandem/core (every `tandem` command does) stays cheap.
const requireModule = createRequire(import.meta.url);
const parseDocument: typeof Yaml.parseDocument = (...args) => (requireModule('yaml') as typeof Yaml).parseDocument(...args);

export type Validation = { ok: true; config: Config } | { ok: false; problems: string[] };

/** `/groups/1/resources/0/address` → `groups[1].resources[0].address` */
export function jsonPointerToPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '');
}

function describe(e: ErrorObject): string {
  const at = jsonPointerToPath(e.instancePath) || '(top level)';
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return `${at}: unknown key "${String(p['additionalProperty'])}"`;
    case 'required':
      return `${at}: missing required key "${String(p['missingProperty'])}"`;
    case 'enum':
      return `${at}: must be one of ${(p['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const':
      return `${at}: must be ${JSON.stringify(p['allowedValue'])}`;
    case 'discriminator':
      return `${at}.type: ${p['error'] === 'mapping' ? 'unknown type' : 'missing "type"'} (expected one of the documented types)`;
    case 'pattern':
      return at.endsWith('publicKey')
        ? `${at}: must be a 40-character Z85 key (the publicKey line tandem keys generate prints)`
        : at.endsWith('url') || at.endsWith('witness')
          ? `${at}: must be an http:// or https:// URL`
          : String(p['pattern']).includes('ms|s|m|h')
            ? `${at}: must be a duration like "500ms", "3s", "5m" or "1h"`
            : `${at}: must be a name of letters, digits, "_", "." or "-" starting with a letter`;
    case 'maxItems':
      return at === 'mirrors' ? `mirrors: mirror disks are not supported by this release` : `${at}: ${e.message}`;
    default:
      return `${at}: ${e.message ?? e.keyword}`;
  }
}

interface RawResource extends Record<string, unknown> {
  name: string;
  type: string;
  dependsOn: string[];
}
interface RawGroup {
  name: string;
  servers?: string[];
  autoStart: boolean;
  autoFailback: boolean;
  exclusive: boolean;
  resources: RawResource[];
}
interface RawMonitor extends Record<string, unknown> {
  name: string;
  type: string;
  target?: string;
  when?: string;
  recovery: { target?: string; reactivations: number; failovers: number; finalAction: string };
}
interface Raw {
  cluster: Record<string, any>;
  servers: { name: string; interconnects: string[]; publicKey?: string }[];
  groups: RawGroup[];
  monitors: RawMonitor[];
}

function duplicates(names: { name: string; path: string }[], what: string, problems: string[]): void {
  const seen = new Map<string, string>();
  for (const { name, path } of names) {
    const first = seen.get(name);
    if (first !== undefined) problems.push(`${path}: duplicate ${what} name "${name}" (first at ${first})`);
    else seen.set(name, path);
  }
}

/** Finds a dependency cycle among a group's resources and returns it as `a -> b -> a`. */
export function findCycle(deps: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | undefined => {
    if (state.get(n) === 'done') return undefined;
    if (state.get(n) === 'visiting') return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, 'visiting');
    stack.push(n);
    for (const d of deps.get(n) ?? []) {
      const c = visit(d);
      if (c) return c;
    }
    stack.pop();
    state.set(n, 'done');
    return undefined;
  };
  for (const n of deps.keys()) {
    const c = visit(n);
    if (c) return c;
  }
  return undefined;
}

function crossCheck(raw: Raw, problems: string[]): void {
  const serverNames = new Set(raw.servers.map((s) => s.name));
  duplicates(
    raw.servers.map((s, i) => ({ name: s.name, path: `servers[${i}].name` })),
    'server',
    problems,
  );
  duplicates(
    raw.groups.map((g, i) => ({ name: g.name, path: `groups[${i}].name` })),
    'group',
    problems,
  );
  // Groups and resources share one namespace, so a recovery target is never ambiguous.
  const targets = [
    ...raw.groups.map((g, i) => ({ name: g.name, path: `groups[${i}].name` })),
    ...raw.groups.flatMap((g, i) => g.resources.map((r, j) => ({ name: r.name, path: `groups[${i}].resources[${j}].name` }))),
  ];
  duplicates(
    targets.filter((t) => t.path.includes('resources')),
    'resource',
    problems,
  );
  for (const t of targets) {
    if (t.name === 'server') problems.push(`${t.path}: "server" is reserved (it names the server as a recovery target)`);
  }
  const groupNames = new Set(raw.groups.map((g) => g.name));
  raw.groups.forEach((g, gi) =>
    g.resources.forEach((r, ri) => {
      if (groupNames.has(r.name)) {
        problems.push(`groups[${gi}].resources[${ri}].name: "${r.name}" is already a group name (groups and resources share names)`);
      }
    }),
  );
  duplicates(
    raw.monitors.map((m, i) => ({ name: m.name, path: `monitors[${i}].name` })),
    'monitor',
    problems,
  );

  raw.groups.forEach((g, gi) => {
    (g.servers ?? []).forEach((s, si) => {
      if (!serverNames.has(s)) problems.push(`groups[${gi}].servers[${si}]: no server named "${s}" in servers`);
    });
    const inGroup = new Set(g.resources.map((r) => r.name));
    g.resources.forEach((r, ri) => {
      r.dependsOn.forEach((d, di) => {
        if (d === r.name) problems.push(`groups[${gi}].resources[${ri}].dependsOn[${di}]: a resource cannot depend on itself`);
        else if (!inGroup.has(d)) problems.push(`groups[${gi}].resources[${ri}].dependsOn[${di}]: no resource "${d}" in group "${g.name}"`);
      });
    });
    const cycle = findCycle(new Map(g.resources.map((r) => [r.name, r.dependsOn.filter((d) => d !== r.name && inGroup.has(d))])));
    if (cycle) problems.push(`groups[${gi}].resources: dependency cycle ${cycle.join(' -> ')}`);
  });

  // A floating IP is one resource's: two would clear each other's ledger entry, and one that is
  // an interconnect would take the heartbeat path down with it when the group stops.
  const interconnects = new Set(raw.servers.flatMap((sv) => sv.interconnects));
  const fipOwner = new Map<string, string>();
  raw.groups.forEach((g, gi) =>
    g.resources.forEach((r, ri) => {
      if (r.type !== 'fip' || typeof r['address'] !== 'string') return;
      const at = `groups[${gi}].resources[${ri}].address`;
      const ip = (r['address'] as string).split('/')[0] as string;
      const first = fipOwner.get(ip);
      if (first) problems.push(`${at}: ${ip} is already the address of ${first}`);
      else fipOwner.set(ip, `resource ${r.name}`);
      if (interconnects.has(ip)) problems.push(`${at}: ${ip} is an interconnect address, not a floating one`);
    }),
  );
  const resources = new Map(raw.groups.flatMap((g) => g.resources.map((r) => [r.name, { r, group: g.name }] as const)));
  raw.monitors.forEach((m, mi) => {
    if (m.target !== undefined) {
      const t = resources.get(m.target);
      if (!t) problems.push(`monitors[${mi}].target: no resource named "${m.target}"`);
      else if (m.type === 'pid' && !(t.r.type === 'exec' && t.r['mode'] === 'async')) {
        problems.push(`monitors[${mi}].target: a pid monitor needs an exec resource with mode: async ("${m.target}" is not)`);
      } else if (m.type === 'fip' && t.r.type !== 'fip') {
        problems.push(`monitors[${mi}].target: a fip monitor needs a fip resource ("${m.target}" is ${t.r.type})`);
      }
    }
    const rt = m.recovery.target;
    if (rt === undefined) {
      if (m.target === undefined) problems.push(`monitors[${mi}].recovery.target: required when the monitor has no target resource`);
    } else if (rt !== 'server' && !groupNames.has(rt) && !resources.has(rt)) {
      problems.push(`monitors[${mi}].recovery.target: no group or resource named "${rt}" (or use "server")`);
    }
    if (rt === 'server' && m.recovery.finalAction === 'stop-group') {
      problems.push(`monitors[${mi}].recovery.finalAction: "stop-group" needs a group or resource as recovery target`);
    }
  });

  const e = raw.cluster['emergency'] as { action: string; command?: string };
  if (e.action === 'exec' && !e.command) problems.push(`cluster.emergency.command: required when action is "exec"`);
  const hb = raw.cluster['heartbeat'] as { interval: string; timeout: string };
  if (parseDuration(hb.timeout) <= parseDuration(hb.interval)) {
    problems.push(`cluster.heartbeat.timeout: must be longer than cluster.heartbeat.interval`);
  }
  const rl = raw.cluster['rebootLimit'] as { max: number; resetAfter: string };
  if (rl.max >= 1 && parseDuration(rl.resetAfter) < 1000)
    problems.push(`cluster.rebootLimit.resetAfter: must be at least 1s when max is 1 or more`);
  const deadline = parseDuration((raw.cluster['emergency'] as { deadline: string }).deadline);
  if (deadline >= parseDuration(hb.timeout)) problems.push(`cluster.emergency.deadline: must be shorter than cluster.heartbeat.timeout`);
}

/** The longest duration a timer can hold (setTimeout overflows past 2^31 - 1 ms, about 24.8 days). */
const MAX_DURATION_MS = 2 ** 31 - 1;
/** Lower bounds below which a setting would spin or fence the server by itself. */
const MIN_DURATION_MS: Record<string, number> = {
  'cluster.heartbeat.interval': 50,
  'cluster.stallLimit': 300,
  'cluster.emergency.deadline': 10,
  duplicateWait: 50,
  interval: 100,
  timeout: 10,
};

/** What the timers, the scheduler and the network may add to the loser's release (ms). */
export const FENCE_MARGIN_MS = 50;

/**
 * The fencing arithmetic of DESIGN.md 6.2 and 6.7 (docs/partition.md). A server that has heard
 * no quorum for `quorumLeaseMs` decides its side of the split at once, and a loser releases
 * within the emergency deadline. The others declare it down after the heartbeat timeout; the
 * last heartbeat each side heard may be up to one interval apart. So the loser is done by
 * lease + deadline after its last heartbeat, the winner declares it down timeout − interval
 * after that at the earliest, and waits the difference (plus a margin) before it takes over.
 * With the defaults (1 s, 5 s, 500 ms) the lease is 3.5 s and the winner waits the margin only.
 */
export function fenceTiming(intervalMs: number, timeoutMs: number, deadlineMs: number): { quorumLeaseMs: number; minFenceGraceMs: number } {
  const quorumLeaseMs = Math.max(intervalMs, timeoutMs - intervalMs - deadlineMs);
  const minFenceGraceMs = Math.max(0, quorumLeaseMs + deadlineMs + intervalMs - timeoutMs) + FENCE_MARGIN_MS;
  return { quorumLeaseMs, minFenceGraceMs };
}

/** An explicit fence grace shorter than the loser needs would let a group run on two servers. */
function checkFenceGrace(raw: Raw, problems: string[]): void {
  const c = raw.cluster as Record<string, any>;
  const grace = c['networkPartition']?.fenceGrace;
  if (grace === undefined || !DURATION_RE.test(grace)) return;
  const hb = c['heartbeat'] ?? {};
  const { minFenceGraceMs } = fenceTiming(
    parseDuration(hb.interval ?? '1s'),
    parseDuration(hb.timeout ?? '5s'),
    parseDuration(c['emergency']?.deadline ?? '500ms'),
  );
  if (parseDuration(grace) < minFenceGraceMs) {
    problems.push(
      `cluster.networkPartition.fenceGrace: ${grace} is shorter than the ${minFenceGraceMs}ms a losing server may need to release (heartbeat interval and timeout, emergency deadline): leave it out, or make it longer`,
    );
  }
}

/** Checks every duration in the file against the timer limit and the minimums above. */
function checkDurations(value: unknown, path: string, problems: string[]): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => checkDurations(v, `${path}[${i}]`, problems));
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) checkDurations(v, path ? `${path}.${k}` : k, problems);
  } else if (typeof value === 'string' && DURATION_RE.test(value)) {
    const ms = parseDuration(value);
    const key = path.slice(path.lastIndexOf('.') + 1);
    const min = MIN_DURATION_MS[path] ?? (path.startsWith('monitors[') || path.startsWith('groups[') ? MIN_DURATION_MS[key] : undefined);
    if (ms > MAX_DURATION_MS) problems.push(`${path}: ${value} is longer than the longest timer (24 days)`);
    else if (min !== undefined && ms < min) problems.push(`${path}: ${value} is shorter than the minimum ${min}ms`);
  }
}

function resourceConfig(r: RawResource, group: string): ResourceConfig {
  const x = r as Record<string, any>;
  const base = {
    name: r.name,
    group,
    dependsOn: r.dependsOn,
    timeoutMs: parseDuration(x['timeout']),
    stopTimeoutMs: parseDuration(x['stopTimeout']),
    onStartFailure: x['onStartFailure'],
    onStopFailure: x['onStopFailure'],
  };
  if (r.type === 'fip') {
    return {
      ...base,
      type: 'fip',
      address: x['address'],
      interface: x['interface'],
      arpCount: x['arpCount'],
      checkDuplicate: x['checkDuplicate'],
      duplicateWaitMs: parseDuration(x['duplicateWait']),
    };
  }
  return {
    ...base,
    type: 'exec',
    start: x['start'],
    ...(x['stop'] !== undefined ? { stop: x['stop'] } : {}),
    mode: x['mode'],
    ...(x['cwd'] !== undefined ? { cwd: x['cwd'] } : {}),
    env: x['env'],
  };
}

function normalise(raw: Raw): Config {
  const c = raw.cluster;
  const hb = c['heartbeat'];
  const np = c['networkPartition'];
  const allServers = raw.servers.map((s) => s.name);
  const groupOf = new Map<string, string>();
  for (const g of raw.groups) for (const r of g.resources) groupOf.set(r.name, g.name);

  const groups: GroupConfig[] = raw.groups.map((g) => ({
    name: g.name,
    servers: g.servers ?? allServers,
    autoStart: g.autoStart,
    autoFailback: g.autoFailback,
    exclusive: g.exclusive,
    resources: g.resources.map((r) => resourceConfig(r, g.name)),
  }));

  const monitors: MonitorConfig[] = raw.monitors.map((m) => {
    const x = m as Record<string, any>;
    const rtarget = m.recovery.target ?? groupOf.get(m.target ?? '') ?? '';
    const kind = rtarget === 'server' ? 'server' : groupOf.has(rtarget) ? 'resource' : 'group';
    const out: MonitorConfig = {
      name: m.name,
      type: m.type as MonitorConfig['type'],
      intervalMs: parseDuration(x['interval']),
      timeoutMs: parseDuration(x['timeout']),
      retries: x['retries'],
      startDelayMs: parseDuration(x['startDelay']),
      when: (m.when as MonitorConfig['when'] | undefined) ?? (m.type === 'pid' ? 'active' : m.target ? 'active' : 'always'),
      delayWarningPercent: x['delayWarning'],
      recovery: {
        target: rtarget,
        kind,
        group: kind === 'server' ? '' : kind === 'group' ? rtarget : (groupOf.get(rtarget) ?? ''),
        reactivations: m.recovery.reactivations,
        failovers: m.recovery.failovers,
        finalAction: m.recovery.finalAction as MonitorConfig['recovery']['finalAction'],
      },
    };
    for (const k of [
      'target',
      'processName',
      'minCount',
      'command',
      'url',
      'expectStatus',
      'host',
      'port',
      'interface',
      'addresses',
    ] as const) {
      if (x[k] !== undefined) (out as unknown as Record<string, unknown>)[k] = x[k];
    }
    return out;
  });

  const timeoutMs = parseDuration(hb.timeout);
  const lease = fenceTiming(parseDuration(hb.interval), timeoutMs, parseDuration(c['emergency'].deadline));
  return {
    cluster: {
      name: c['name'],
      ...(c['secret'] !== undefined ? { secret: c['secret'] } : {}),
      heartbeat: { intervalMs: parseDuration(hb.interval), timeoutMs, port: hb.port },
      nodeManagerPort: c['nodeManagerPort'],
      networkPartition: {
        methods: np.method,
        ...(np.witness !== undefined ? { witness: np.witness } : {}),
        ...(np.pingTargets !== undefined ? { pingTargets: np.pingTargets } : {}),
        ...(np.disk !== undefined ? { disk: np.disk } : {}),
        quorumLeaseMs: lease.quorumLeaseMs,
        fenceGraceMs: np.fenceGrace !== undefined ? parseDuration(np.fenceGrace) : lease.minFenceGraceMs,
      },
      emergency: {
        action: c['emergency'].action,
        ...(c['emergency'].command !== undefined ? { command: c['emergency'].command } : {}),
        deadlineMs: parseDuration(c['emergency'].deadline),
      },
      stallLimitMs: c['stallLimit'] !== undefined ? parseDuration(c['stallLimit']) : Math.floor(timeoutMs / 2),
      startupWaitMs: parseDuration(c['startupWait']),
      autoReturn: c['autoReturn'] === true,
      rebootLimit: { max: c['rebootLimit'].max, resetAfterMs: parseDuration(c['rebootLimit'].resetAfter) },
    },
    servers: raw.servers.map((s) => ({ name: s.name, interconnects: s.interconnects, ...(s.publicKey ? { publicKey: s.publicKey } : {}) })),
    groups,
    monitors,
  };
}

/** Validates configuration text; never throws. */
export function validateConfigText(text: string): Validation {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return { ok: false, problems: doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`) };
  }
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (err) {
    return { ok: false, problems: [`YAML: ${(err as Error).message.split('\n')[0]}`] };
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return { ok: false, problems: ['(top level): must be a mapping with cluster, servers, groups and monitors'] };
  }
  if (!validateSchema(data)) {
    const seen = new Set<string>();
    const problems = (validateSchema.errors ?? []).map(describe).filter((p) => !seen.has(p) && seen.add(p));
    return { ok: false, problems };
  }
  const problems: string[] = [];
  checkDurations(data, '', problems);
  crossCheck(data as unknown as Raw, problems);
  checkFenceGrace(data as unknown as Raw, problems);
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, config: normalise(data as unknown as Raw) };
}

/** What any wait on a group operation allows beyond its resources' own time bounds. */
export const GROUP_OPERATION_MARGIN_MS = 10_000;

/**
 * How long one operation on a group may take: stopping and starting every resource of it (a
 * restart), plus a margin. Whoever waits on rc for a group (nm for the CLI, rm for recovery) uses it.
 */
export function groupOperationTimeoutMs(group: Pick<GroupConfig, 'resources'>): number {
  return group.resources.reduce((sum, r) => sum + r.timeoutMs + r.stopTimeoutMs, GROUP_OPERATION_MARGIN_MS);
}

/**
 * How long a server may take to decide a network partition (DESIGN.md 6.2): nothing for
 * `majority` alone (it counts what it hears), one heartbeat timeout (0.5 to 2 s) to ask a
 * witness or ping, and at least 2 s with a disk lease (write, settle for 1 s, read again). The
 * winner waits this on top of the fence grace: the loser decides before it releases.
 */
export function partitionDecisionMs(cluster: Pick<Config['cluster'], 'networkPartition' | 'heartbeat'>): number {
  const methods = cluster.networkPartition.methods;
  const timeout = cluster.heartbeat.timeoutMs;
  if (methods.includes('disk')) return Math.max(2000, timeout);
  if (methods.some((m) => m !== 'majority')) return Math.min(2000, Math.max(500, timeout));
  return 0;
}

/**
 * What a valid configuration may still get wrong (DESIGN.md 6.2): printed by `tandem config
 * validate` and logged by the node manager at start. Not problems: the file works as written.
 */
export function configWarnings(config: Config): string[] {
  const warnings: string[] = [];
  const methods = config.cluster.networkPartition.methods;
  const arbiter = methods.includes('witness') || methods.includes('disk');
  if (config.servers.length === 2 && !arbiter) {
    if (methods.includes('majority')) {
      warnings.push(
        `cluster.networkPartition.method: with majority and no witness or disk on two servers, ${config.servers[1]!.name} loses every split to ${config.servers[0]!.name}, a power cut of ${config.servers[0]!.name} included: it can never take its groups over (add witness or disk)`,
      );
    } else {
      warnings.push(
        'cluster.networkPartition.method: ping alone cannot decide a split between two servers that both still reach their network (add witness or disk)',
      );
    }
  }
  return warnings;
}

/** Validates configuration text for one server: the file, and that the server is in it. */
export function validateConfigForServer(text: string, server: string): Validation {
  const v = validateConfigText(text);
  if (v.ok && !v.config.servers.some((s) => s.name === server)) {
    return { ok: false, problems: [`servers: this server "${server}" is not listed (set TANDEM_NODE or the host name)`] };
  }
  return v;
}

/** The name of this server: TANDEM_NODE, else the host name. */
export function localServerName(env: NodeJS.ProcessEnv = process.env): string {
  return env['TANDEM_NODE'] ?? hostname();
}

/** Loads and validates the configuration file; throws one TandemError listing every problem. */
export function loadConfig(path: string, opts: { server?: string } = {}): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new TandemError('NOT_FOUND', `cannot read configuration ${path}: ${(err as Error).message}`, {}, { cause: err });
  }
  const v = opts.server === undefined ? validateConfigText(text) : validateConfigForServer(text, opts.server);
  if (!v.ok) {
    throw new TandemError('BAD_REQUEST', `configuration ${path} is invalid:\n  ${v.problems.join('\n  ')}`, {
      problems: String(v.problems.length),
    });
  }
  return v.config;
}
