/** The monitor types by name. Adding a type: one file here, one entry below, one schema entry in @tandem/core. */
import type { MonitorConfig, MonitorType } from '@tandem/core';
import { customMonitor } from './custom.js';
import { fipMonitor } from './fip.js';
import { httpMonitor } from './http.js';
import { ipMonitor } from './ip.js';
import type { Monitor, MonitorEnv, MonitorFactory } from './monitor.js';
import { nicMonitor } from './nic.js';
import { pidMonitor } from './pid.js';
import { processMonitor } from './process.js';
import { tcpMonitor } from './tcp.js';

export const MONITOR_TYPES: Record<MonitorType, MonitorFactory> = {
  pid: pidMonitor,
  process: processMonitor,
  custom: customMonitor,
  http: httpMonitor,
  tcp: tcpMonitor,
  fip: fipMonitor,
  nic: nicMonitor,
  ip: ipMonitor,
};

export function createMonitor(config: MonitorConfig, env: MonitorEnv): Monitor {
  return MONITOR_TYPES[config.type](config, env);
}
