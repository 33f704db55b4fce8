/**
 * The one interface every monitor type implements, and what a monitor may learn from the
 * resource controller (the process of an async exec resource) and from the configuration (a
 * floating IP's address). A check never throws on a failed target: it answers
 * `{ ok: false, message }`; it stops promptly when aborted.
 */
import type { MonitorConfig, ResourceConfig } from '@tandem/core';

export interface CheckResult {
  ok: boolean;
  /** one readable line: what was seen */
  message: string;
}

export interface Monitor {
  check(signal: AbortSignal): Promise<CheckResult>;
}

/** What rc last said about one resource (a subset of ResourceStatus). */
export interface ResourceFacts {
  name: string;
  state: string;
  pid: number;
  alive: boolean;
}

/** What a monitor may ask of the daemon around it. */
export interface MonitorEnv {
  /** the resource as rc last reported it on this server, undefined when rc does not know it here */
  resource(name: string): ResourceFacts | undefined;
  /** a resource's configuration (a fip monitor reads its target's address); absent where no resource is configured */
  resourceConfig?(name: string): ResourceConfig | undefined;
}

export type MonitorFactory = (config: MonitorConfig, env: MonitorEnv) => Monitor;

export const healthy = (message: string): CheckResult => ({ ok: true, message });
export const failed = (message: string): CheckResult => ({ ok: false, message });
