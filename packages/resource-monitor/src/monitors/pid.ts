/** `pid`: the process of an async exec resource, as reported by rc, still exists and is not a zombie. */
import { isAlive, type MonitorConfig } from '@tandem/core';
import { failed, healthy, type Monitor, type MonitorEnv } from './monitor.js';

export function pidMonitor(config: MonitorConfig, env: MonitorEnv): Monitor {
  const target = config.target ?? '';
  return {
    async check() {
      const resource = env.resource(target);
      if (!resource) return failed(`resource ${target} is not running on this server`);
      if (resource.pid <= 0) return failed(`resource ${target} has no process`);
      if (!isAlive(resource.pid)) return failed(`process ${resource.pid} of resource ${target} is gone`);
      return healthy(`process ${resource.pid} of resource ${target} is alive`);
    },
  };
}
