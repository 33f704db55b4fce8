/**
 * One winston logger per daemon: JSON lines in <logs>/<daemon>.log (rotated by size), and
 * readable text on stdout, which pm2 keeps for `pm2 logs tandem-<daemon>`.
 */
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type Winston from 'winston';

export type Logger = Winston.Logger;

// winston is loaded when the first logger is made, not when @tandem/core is imported: the CLI
// imports core too, and winston's 50 ms of loading would be part of every `tandem` command.
const requireModule = createRequire(import.meta.url);
const loadWinston = (): typeof Winston => requireModule('winston') as typeof Winston;

export interface LoggerOptions {
  daemon: string;
  server: string;
  logsDir: string;
  /** also print to stdout (default true) */
  console?: boolean;
  level?: string;
}

export function createLogger(opts: LoggerOptions): Logger {
  const winston = loadWinston();
  mkdirSync(opts.logsDir, { recursive: true, mode: 0o750 });
  const transports: Winston.transport[] = [
    new winston.transports.File({
      filename: join(opts.logsDir, `${opts.daemon}.log`),
      maxsize: 10 * 1024 * 1024,
      maxFiles: 5,
      tailable: true,
      format: winston.format.combine(winston.format.errors({ stack: true }), winston.format.timestamp(), winston.format.json()),
    }),
  ];
  if (opts.console !== false) {
    transports.push(
      new winston.transports.Console({
        format: winston.format.combine(
          winston.format.errors({ stack: true }),
          winston.format.printf((info) => {
            const { level, message, server: _s, daemon: _d, timestamp: _t, stack, ...rest } = info as Record<string, unknown>;
            const ctx = Object.entries(rest)
              .filter(([k]) => typeof k === 'string' && !k.startsWith('Symbol'))
              .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
              .join(' ');
            return `${String(level).padEnd(5)} ${String(message)}${ctx ? `  ${ctx}` : ''}${stack ? `\n${String(stack)}` : ''}`;
          }),
        ),
      }),
    );
  }
  return winston.createLogger({
    level: opts.level ?? process.env['TANDEM_LOG_LEVEL'] ?? 'info',
    defaultMeta: { server: opts.server, daemon: opts.daemon },
    transports,
  });
}

/** Waits until the file transports have written what they hold (bounded by timeoutMs). */
export async function flushLogger(logger: Logger, timeoutMs = 500): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    logger.on('finish', () => {
      clearTimeout(timer);
      resolve();
    });
    logger.end();
  });
}
