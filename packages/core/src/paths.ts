/**
 * Where Tandem keeps things (DESIGN.md section 7). TANDEM_HOME prefixes every path, so several
 * servers can run side by side on one machine without root.
 */
import { join } from 'node:path';

export const DAEMONS = ['nm', 'hb', 'rc', 'rm', 'md'] as const;
/** The five core daemons: the death of any of them fences the server. */
export type CoreDaemon = (typeof DAEMONS)[number];
export type DaemonName = CoreDaemon | 'guard';

export const PM2_NAMES: Record<DaemonName, string> = {
  nm: 'tandem-nm',
  hb: 'tandem-hb',
  rc: 'tandem-rc',
  rm: 'tandem-rm',
  md: 'tandem-md',
  guard: 'tandem-guard',
};

export interface Paths {
  home: string;
  config: string;
  run: string;
  state: string;
  logs: string;
  /** ipc endpoint of a daemon's ROUTER */
  rpc(daemon: DaemonName): string;
  /** ipc endpoint of a daemon's PUB */
  events(daemon: DaemonName): string;
  /** ipc endpoint where the guard listens for one daemon's liveness connection */
  guardLive(daemon: CoreDaemon): string;
  /** one file per running core daemon: how a restarted guard re-adopts them */
  registry: string;
  /** the activation ledger: what the guard must release in an emergency */
  ledger: string;
  alerts: string;
  resourceLog(group: string, resource: string): string;
  /** this server's CURVE secret key (mode 0600) and public key, written by `tandem keys generate` */
  curveSecretKey: string;
  curvePublicKey: string;
}

// A unix socket path must fit in sun_path (108 bytes with the terminating zero).
const MAX_IPC_PATH = 107;

export function resolvePaths(env: NodeJS.ProcessEnv = process.env): Paths {
  const home = env['TANDEM_HOME'] ?? '';
  const config = env['TANDEM_CONFIG'] ?? join(home || '/', 'etc/tandem/cluster.yaml');
  const run = join(home || '/', 'run/tandem');
  const state = join(home || '/', 'var/lib/tandem');
  const logs = join(home || '/', 'var/log/tandem');
  const ipc = (file: string): string => {
    const path = join(run, file);
    if (path.length > MAX_IPC_PATH) {
      throw new Error(
        `run directory path too long for a unix socket (${path.length} > ${MAX_IPC_PATH} bytes): ${path}; use a shorter TANDEM_HOME`,
      );
    }
    return `ipc://${path}`;
  };
  return {
    home,
    config,
    run,
    state,
    logs,
    rpc: (d) => ipc(`${d}.rpc`),
    events: (d) => ipc(`${d}.events`),
    guardLive: (d) => ipc(`guard-${d}.live`),
    registry: join(run, 'daemons'),
    ledger: join(run, 'ledger'),
    alerts: join(logs, 'alerts.log'),
    resourceLog: (g, r) => join(logs, 'resources', `${g}.${r}.log`),
    curveSecretKey: join(state, 'curve.key'),
    curvePublicKey: join(state, 'curve.pub'),
  };
}
