/** `tcp`: a TCP connection to host:port is accepted. */
import { connect } from 'node:net';
import type { MonitorConfig } from '@tandem/core';
import { failed, healthy, type CheckResult, type Monitor } from './monitor.js';

export function tcpMonitor(config: MonitorConfig): Monitor {
  const host = config.host ?? '127.0.0.1';
  const port = config.port ?? 0;
  const where = `${host}:${port}`;
  return {
    check: (signal) =>
      new Promise<CheckResult>((resolve) => {
        const socket = connect({ host, port });
        const finish = (result: CheckResult): void => {
          signal.removeEventListener('abort', onAbort);
          socket.destroy();
          resolve(result);
        };
        const onAbort = (): void => finish(failed(`connection to ${where} aborted`));
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
        socket.once('connect', () => finish(healthy(`connected to ${where}`)));
        socket.once('error', (err: NodeJS.ErrnoException) => finish(failed(`cannot connect to ${where}: ${err.code ?? err.message}`)));
      }),
  };
}
