/** One driver per resource type; adding a type means adding its file and a case in each function here. */
import type { Config, Ledger, Paths, ResourceConfig } from '@tandem/core';
import type { ResourceDriver } from './driver.js';
import { ExecDriver, execStopBudgetMs } from './exec.js';
import { FipDriver, fipStopBudgetMs } from './fip.js';

export function createDriver(resource: ResourceConfig, deps: { ledger: Ledger; paths: Paths }): ResourceDriver {
  switch (resource.type) {
    case 'exec':
      return new ExecDriver(resource, { ledger: deps.ledger, logFile: deps.paths.resourceLog(resource.group, resource.name) });
    case 'fip':
      return new FipDriver(resource, { ledger: deps.ledger, logFile: deps.paths.resourceLog(resource.group, resource.name) });
  }
}

/** The longest one resource's stop may take, retries included. */
export function stopBudgetMs(resource: ResourceConfig): number {
  switch (resource.type) {
    case 'exec':
      return execStopBudgetMs(resource);
    case 'fip':
      return fipStopBudgetMs(resource);
  }
}

/** What rc's orderly stop may take beyond its resources' stops (the controller's own work, the goodbye to the guard). */
export const STOP_MARGIN_MS = 10_000;

/**
 * How long rc's orderly stop may take: the stop budgets of every resource of the configuration
 * added up (as if all ran one after the other), plus a margin. pm2's `kill_timeout` for tandem-rc
 * must be at least this.
 */
export function rcStopTimeoutMs(config: Pick<Config, 'groups'>): number {
  return config.groups.reduce((sum, g) => g.resources.reduce((s, r) => s + stopBudgetMs(r), sum), STOP_MARGIN_MS);
}
