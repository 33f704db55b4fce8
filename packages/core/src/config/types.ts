/** The configuration as the daemons use it: defaults filled in, durations in milliseconds. */
import type { EMERGENCY_ACTIONS, MONITOR_FINAL_ACTIONS, PARTITION_METHODS, START_FINAL_ACTIONS, STOP_FINAL_ACTIONS } from './schema.js';

export type StartFinalAction = (typeof START_FINAL_ACTIONS)[number];
export type StopFinalAction = (typeof STOP_FINAL_ACTIONS)[number];
export type MonitorFinalAction = (typeof MONITOR_FINAL_ACTIONS)[number];
export type EmergencyAction = (typeof EMERGENCY_ACTIONS)[number];
export type PartitionMethod = (typeof PARTITION_METHODS)[number];

/** What every resource has, whatever its type. */
export interface ResourceBase {
  name: string;
  group: string;
  dependsOn: string[];
  timeoutMs: number;
  stopTimeoutMs: number;
  onStartFailure: { retries: number; failovers: number; finalAction: StartFinalAction };
  onStopFailure: { retries: number; finalAction: StopFinalAction };
}

export interface ExecResourceConfig extends ResourceBase {
  type: 'exec';
  start: string;
  stop?: string;
  mode: 'sync' | 'async';
  cwd?: string;
  env: Record<string, string>;
}

/** A floating IP address: added to `interface` where the group runs, removed where it stops. */
export interface FipResourceConfig extends ResourceBase {
  type: 'fip';
  /** with its prefix length: 10.0.0.100/24 */
  address: string;
  interface: string;
  arpCount: number;
  checkDuplicate: boolean;
  /** how long the duplicate check waits for an answer (ms) */
  duplicateWaitMs: number;
}

export type ResourceConfig = ExecResourceConfig | FipResourceConfig;
export type ResourceType = ResourceConfig['type'];

export interface GroupConfig {
  name: string;
  /** failover policy: servers in priority order */
  servers: string[];
  autoStart: boolean;
  autoFailback: boolean;
  exclusive: boolean;
  resources: ResourceConfig[];
}

export type MonitorType = 'pid' | 'process' | 'custom' | 'http' | 'tcp' | 'fip' | 'nic' | 'ip';

export interface MonitorConfig {
  name: string;
  type: MonitorType;
  /** the resource it watches (pid: required) */
  target?: string;
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startDelayMs: number;
  when: 'always' | 'active';
  delayWarningPercent: number;
  recovery: {
    /** a group name, a resource name, or `server` */
    target: string;
    kind: 'group' | 'resource' | 'server';
    /** the group that holds the recovery target (empty for `server`) */
    group: string;
    reactivations: number;
    failovers: number;
    finalAction: MonitorFinalAction;
  };
  processName?: string;
  minCount?: number;
  command?: string;
  url?: string;
  expectStatus?: number;
  host?: string;
  port?: number;
  /** nic: the interface whose link must be up */
  interface?: string;
  /** ip: addresses to ping; healthy when any answers */
  addresses?: string[];
}

export interface ServerConfig {
  name: string;
  interconnects: string[];
  publicKey?: string;
}

export interface Config {
  cluster: {
    name: string;
    secret?: string;
    heartbeat: { intervalMs: number; timeoutMs: number; port: number };
    nodeManagerPort: number;
    networkPartition: {
      methods: PartitionMethod[];
      witness?: string;
      pingTargets?: string[];
      disk?: string;
      /** how long the others wait after declaring a server down before they start its groups */
      fenceGraceMs: number;
      /** derived: a server that heard no quorum for this long decides its side of a split at once */
      quorumLeaseMs: number;
    };
    emergency: { action: EmergencyAction; command?: string; deadlineMs: number };
    /** a daemon silent or late this long is treated as crashed */
    stallLimitMs: number;
    startupWaitMs: number;
    /** a server that went down without a clean stop rejoins by itself, instead of waiting for `tandem node return` */
    autoReturn: boolean;
    rebootLimit: { max: number; resetAfterMs: number };
  };
  servers: ServerConfig[];
  groups: GroupConfig[];
  monitors: MonitorConfig[];
}
