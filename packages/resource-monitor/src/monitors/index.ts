/** The monitor types by name. Adding a type: one file here, one entry below, one schema entry in @tandem/core. */
import type { MonitorConfig, MonitorType } from '@tandem/core';
import { customMonitor } from './custom.js';
import { httpMonitor } from './http.js';
import type { Monitor, MonitorEnv, MonitorFactory } from './monitor.js';
import { pidMonitor } from './pid.js';
import { processMonitor } from './process.js';
import { tcpMonitor } from './tcp.js';

export const MONITOR_TYPES: Record<MonitorType, MonitorFactory> = {
  pid: pidMonitor,
  process: processMonitor,
  custom: customMonitor,
  http: httpMonitor,
  tcp: tcpMonitor,
};

export function createMonitor(config: MonitorConfig, env: MonitorEnv): Monitor {
  return MONITOR_TYPES[config.type](config, env);
}
