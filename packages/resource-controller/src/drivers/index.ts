/** One driver per resource type; adding a type means adding its file and a case here. */
import type { Ledger, Paths, ResourceConfig } from '@tandem/core';
import type { ResourceDriver } from './driver.js';
import { ExecDriver } from './exec.js';

export function createDriver(resource: ResourceConfig, deps: { ledger: Ledger; paths: Paths }): ResourceDriver {
  switch (resource.type) {
    case 'exec':
      return new ExecDriver(resource, { ledger: deps.ledger, logFile: deps.paths.resourceLog(resource.group, resource.name) });
  }
}
