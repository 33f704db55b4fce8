/**
 * `nic`: an interface's link is up. Read through netlink (`ip -o link show`), which answers for
 * the network namespace this process runs in, whatever /sys shows.
 */
import { runCommand, type MonitorConfig } from '@tandem/core';
import { failed, healthy, type CheckResult, type Monitor } from './monitor.js';

/**
 * Whether a link described by `ip -o link show` is up: administratively UP and either in
 * operational state UP, or, for interfaces without carrier semantics (dummy, some tunnels) whose
 * state stays UNKNOWN, with LOWER_UP (carrier) set.
 */
export function parseLink(output: string): { up: boolean; what: string } {
  const flags = (/<([^>]*)>/.exec(output)?.[1] ?? '').split(',');
  const state = /\bstate (\S+)/.exec(output)?.[1] ?? 'UNKNOWN';
  const up = flags.includes('UP') && (state === 'UP' || (state === 'UNKNOWN' && flags.includes('LOWER_UP')));
  return { up, what: `state ${state} <${flags.join(',')}>` };
}

/** The link of `ifname` as a check result: healthy while it is up. */
export async function checkLink(ifname: string, signal: AbortSignal): Promise<CheckResult> {
  const shown = await runCommand('ip', ['-o', 'link', 'show', 'dev', ifname], { signal });
  if (shown.code !== 0) return failed(`cannot read the link of ${ifname}: ${shown.failure}`);
  const link = parseLink(shown.stdout);
  return link.up ? healthy(`link of ${ifname} is up`) : failed(`link of ${ifname} is down (${link.what})`);
}

export function nicMonitor(config: MonitorConfig): Monitor {
  const ifname = config.interface ?? '';
  return { check: (signal) => checkLink(ifname, signal) };
}
