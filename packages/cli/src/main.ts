#!/usr/bin/env node
/**
 * The `tandem` command: parses the command line (yargs) and runs one command from commands.ts.
 * Every error ends here as one line on stderr and an exit code (errors.ts).
 */
import { readFileSync } from 'node:fs';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { parseInterval, parseResourceRef } from './args.js';
import * as run from './commands.js';
import { EXIT, UsageError, errorLine, exitCodeFor } from './errors.js';
import { WITNESS_PORT, parseWitnessPort, parseWitnessTtl, runWitness } from './witness.js';

const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** setTimeout takes at most 2^31-1 ms; a longer delay would fire at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

interface Global {
  timeout: number | undefined;
}

/** A group of subcommands (`tandem group …`) that needs one of them. */
const needsSubcommand = (y: Argv<Global>, what: string): Argv<Global> =>
  y.demandCommand(1, `${what} needs a subcommand (tandem ${what} --help)`);

const cli = yargs(hideBin(process.argv))
  .scriptName('tandem')
  .usage('$0 <command> [options]\n\nTalks to tandem-nm on this server (sockets under $TANDEM_HOME/run/tandem).')
  .option('timeout', {
    type: 'number',
    describe: 'how long to wait for tandem-nm, in ms (default: 5000 for queries, 600000 for operations)',
  })
  .check((argv) => {
    if (argv.timeout !== undefined && !(Number.isInteger(argv.timeout) && argv.timeout > 0 && argv.timeout <= MAX_TIMEOUT_MS))
      throw new UsageError(`--timeout must be a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS}`);
    return true;
  })
  .command(
    'status',
    'show servers, groups, monitors and daemons',
    (y) =>
      y
        .option('json', { type: 'boolean', default: false, describe: 'print JSON' })
        .option('watch', { type: 'boolean', default: false, describe: 'redraw until Ctrl-C' })
        .option('interval', { type: 'string', describe: 'redraw interval with --watch (default 1s)' }),
    async (a) => {
      if (a.interval !== undefined && !a.watch) throw new UsageError('--interval needs --watch');
      await run.status({ timeout: a.timeout, json: a.json, watchIntervalMs: a.watch ? parseInterval(a.interval ?? '1s') : undefined });
    },
  )
  .command('cluster', 'start, stop, suspend or resume the cluster service on this server', (y) =>
    needsSubcommand(
      (Object.keys(run.CLUSTER_ACTIONS) as (keyof typeof run.CLUSTER_ACTIONS)[]).reduce(
        (acc, action) =>
          acc.command(
            action,
            `${action} the cluster service`,
            (c) => c,
            async (a) => run.cluster(action, { timeout: a.timeout }),
          ),
        y,
      ),
      'cluster',
    ),
  )
  .command('group', 'start, stop, restart, move or fail over a group', (y) =>
    needsSubcommand(
      y
        .command(
          'start <name>',
          'start a group (on --server, or where the failover policy says)',
          (c) =>
            c
              .positional('name', { type: 'string', demandOption: true })
              .option('server', { type: 'string', describe: 'the server to start it on' }),
          async (a) => run.group('start', a.name, { timeout: a.timeout, server: a.server }),
        )
        .command(
          'stop <name>',
          'stop a group',
          (c) =>
            c
              .positional('name', { type: 'string', demandOption: true })
              .option('server', { type: 'string', describe: 'the server it runs on' }),
          async (a) => run.group('stop', a.name, { timeout: a.timeout, server: a.server }),
        )
        .command(
          'restart <name>',
          'stop and start a group where it runs',
          (c) =>
            c
              .positional('name', { type: 'string', demandOption: true })
              .option('server', { type: 'string', describe: 'the server it runs on' }),
          async (a) => run.group('restart', a.name, { timeout: a.timeout, server: a.server }),
        )
        .command(
          'move <name>',
          'move a group to another server',
          (c) =>
            c
              .positional('name', { type: 'string', demandOption: true })
              .option('server', { type: 'string', describe: 'the destination (default: the next in its policy)' }),
          async (a) => run.group('move', a.name, { timeout: a.timeout, server: a.server }),
        )
        .command(
          'failover <name>',
          'fail a group over to the next server of its policy',
          (c) => c.positional('name', { type: 'string', demandOption: true }),
          async (a) => run.group('failover', a.name, { timeout: a.timeout }),
        ),
      'group',
    ),
  )
  .command('resource', 'start, stop or restart one resource of a group', (y) =>
    needsSubcommand(
      (Object.keys(run.RESOURCE_ACTIONS) as (keyof typeof run.RESOURCE_ACTIONS)[]).reduce(
        (acc, action) =>
          acc.command(
            `${action} <name>`,
            `${action} a resource (NAME --group GROUP, or GROUP/NAME)`,
            (c) =>
              c
                .positional('name', { type: 'string', demandOption: true })
                .option('group', { alias: 'g', type: 'string', describe: 'its group' }),
            async (a) => run.resource(action, parseResourceRef(a.name, a.group), { timeout: a.timeout }),
          ),
        y,
      ),
      'resource',
    ),
  )
  .command('monitor', 'suspend, resume or reset monitors (all of them when no name is given)', (y) =>
    needsSubcommand(
      (Object.keys(run.MONITOR_ACTIONS) as (keyof typeof run.MONITOR_ACTIONS)[]).reduce(
        (acc, action) =>
          acc.command(
            `${action} [names..]`,
            `${action} monitors`,
            (c) => c.positional('names', { type: 'string', array: true, default: [] as string[] }),
            async (a) => run.monitor(action, a.names, { timeout: a.timeout }),
          ),
        y,
      ),
      'monitor',
    ),
  )
  .command('config', 'validate or show the configuration', (y) =>
    needsSubcommand(
      y
        .command(
          'validate [file]',
          'validate FILE (default: $TANDEM_CONFIG or /etc/tandem/cluster.yaml)',
          (c) =>
            c.positional('file', { type: 'string' }).option('local', {
              type: 'boolean',
              default: false,
              describe: 'validate here, without tandem-nm, and check that this server (TANDEM_NODE or host name) is in the file',
            }),
          async (a) => run.configValidate(a.file, { timeout: a.timeout, local: a.local }),
        )
        .command(
          'show',
          'print the configuration tandem-nm uses',
          (c) => c,
          async (a) => run.configShow({ timeout: a.timeout }),
        ),
      'config',
    ),
  )
  .command(
    'events',
    'show the alert log (newest last)',
    (y) =>
      y
        .option('limit', { alias: 'n', type: 'number', describe: 'how many of the newest (default 100)' })
        .option('json', { type: 'boolean', default: false, describe: 'print JSON' }),
    async (a) => {
      if (a.limit !== undefined && !(Number.isInteger(a.limit) && a.limit > 0))
        throw new UsageError('--limit must be a positive whole number');
      await run.events({ timeout: a.timeout, limit: a.limit, json: a.json });
    },
  )
  .command('logs', 'collect logs, configuration and status into one archive', (y) =>
    needsSubcommand(
      y.command(
        'collect',
        'write a .tar.gz of the logs, the configuration and a status snapshot',
        (c) => c.option('output', { alias: 'o', type: 'string', describe: 'the archive to write (default: beside the logs directory)' }),
        async (a) => run.logsCollect({ timeout: a.timeout, output: a.output }),
      ),
      'logs',
    ),
  )
  .command('keys', "make this server's CURVE key pair for the link between node managers", (y) =>
    needsSubcommand(
      y.command(
        'generate',
        'write the secret key to the state directory and print the publicKey line for cluster.yaml',
        (c) => c.option('force', { type: 'boolean', default: false, describe: 'replace an existing key pair' }),
        async (a) => run.keysGenerate({ force: a.force }),
      ),
      'keys',
    ),
  )
  .command(
    'witness',
    'run the witness service of the witness partition method (one lease per cluster) until SIGTERM or SIGINT',
    (y) =>
      y
        .option('port', { type: 'number', default: WITNESS_PORT, describe: 'TCP port (0: any free port)' })
        .option('bind', { type: 'string', default: '0.0.0.0', describe: 'address to listen on' })
        .option('ttl', { type: 'string', default: '30s', describe: 'how long a granted lease lasts without renewal' }),
    async (a) => runWitness({ port: parseWitnessPort(a.port), bind: a.bind, ttlMs: parseWitnessTtl(a.ttl) }),
  )
  .demandCommand(1, 'name a command (tandem --help lists them)')
  .strict()
  .help()
  .alias('h', 'help')
  .version(version)
  .wrap(Math.min(120, process.stdout.columns || 100))
  .fail((message, err) => {
    // yargs reports its own usage errors with a message; errors thrown by a command come as err.
    process.stderr.write(`${err ? errorLine(err) : `tandem: ${message}`}\n`);
    process.exit(err ? exitCodeFor(err) : EXIT.USAGE);
  });

await cli.parseAsync();
