/**
 * `fip`: the floating IP of a fip resource is still on its interface, and that interface's link
 * is up. The address and interface come from the target resource's configuration.
 */
import { findAddress, type MonitorConfig } from '@tandem/core';
import { failed, healthy, type Monitor, type MonitorEnv } from './monitor.js';
import { checkLink } from './nic.js';

export function fipMonitor(config: MonitorConfig, env: MonitorEnv): Monitor {
  const target = config.target ?? '';
  return {
    async check(signal) {
      const resource = env.resourceConfig?.(target);
      if (resource?.type !== 'fip') return failed(`resource ${target} is not a floating IP known to this monitor`);
      const { address, interface: ifname } = resource;
      const found = await findAddress(address, ifname, { signal });
      if ('failure' in found) return failed(`cannot read the addresses of ${ifname}: ${found.failure}`);
      if ('absent' in found) return failed(`${address} is not on ${ifname}`);
      const link = await checkLink(ifname, signal);
      return link.ok ? healthy(`${address} is on ${ifname}, link up`) : failed(`${address} is on ${ifname} but ${link.message}`);
    },
  };
}
