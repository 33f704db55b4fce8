/**
 * The environment of exec resource scripts (docs/architecture.md, "Script environment"). A stop
 * script sees the TANDEM_EVENT/SERVER/PRIORITY/DISK values of the last start of that resource.
 */

/** Why a start script runs. */
export type ScriptEvent = 'START' | 'FAILOVER' | 'RECOVER';

/** Why a stop script runs. */
export const STOP_FACTORS = [
  'CLUSTERSHUTDOWN',
  'SERVERSHUTDOWN',
  'CLUSTERLEAVE',
  'GROUPSTOP',
  'GROUPMOVE',
  'GROUPFAILOVER',
  'GROUPRESTART',
  'RESOURCESTOP',
  'RESOURCERESTART',
] as const;
export type StopFactor = (typeof STOP_FACTORS)[number];

/** Why a group or resource is started, as the request says it (the wire's Cause without its prefix). */
export type StartCause = 'OPERATOR' | 'STARTUP' | 'MONITOR' | 'CLUSTER_STOP' | 'FINAL_ACTION' | 'FAILOVER' | 'UNSPECIFIED';

/** The values a start computes and the following stop repeats. */
export interface StartValues {
  TANDEM_EVENT: ScriptEvent;
  TANDEM_SERVER: 'HOME' | 'OTHER';
  TANDEM_PRIORITY: string;
  TANDEM_DISK: 'SUCCESS' | 'FAILURE';
}

export interface ScriptTarget {
  cluster: string;
  /** this server's name */
  server: string;
  group: { name: string; servers: string[] };
  resource: string;
}

export type ScriptRun = { phase: 'start'; values: StartValues } | { phase: 'stop'; factor: StopFactor; lastStart: StartValues };

/** START vs FAILOVER vs RECOVER: a failover start is FAILOVER, a recovery by the monitor RECOVER, anything else START. */
export function startEventFor(cause: StartCause): ScriptEvent {
  if (cause === 'FAILOVER') return 'FAILOVER';
  if (cause === 'MONITOR') return 'RECOVER';
  return 'START';
}

/** The values of a start on `server`; TANDEM_PRIORITY is 0 when the server is not in the group's servers. */
export function startValues(event: ScriptEvent, server: string, groupServers: string[], diskFailed: boolean): StartValues {
  return {
    TANDEM_EVENT: event,
    TANDEM_SERVER: groupServers[0] === server ? 'HOME' : 'OTHER',
    TANDEM_PRIORITY: String(groupServers.indexOf(server) + 1),
    TANDEM_DISK: diskFailed ? 'FAILURE' : 'SUCCESS',
  };
}

/** The TANDEM_* variables of one script run. TANDEM_FACTOR is set for stop scripts only. */
export function scriptEnv(target: ScriptTarget, run: ScriptRun): Record<string, string> {
  const names = {
    TANDEM_GROUP: target.group.name,
    TANDEM_RESOURCE: target.resource,
    TANDEM_SERVER_NAME: target.server,
    TANDEM_CLUSTER: target.cluster,
  };
  if (run.phase === 'start') return { ...run.values, ...names };
  return { ...run.lastStart, TANDEM_FACTOR: run.factor, ...names };
}
