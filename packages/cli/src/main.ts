#!/usr/bin/env node
/**
 * The `tandem` command: parses the command line (yargs) and runs one command from commands.ts.
 * Every error ends here as one line on stderr and an exit code (errors.ts).
 */
import { readFileSync } from 'node:fs';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { WITNESS_PORT, parseInterval, parseNode, parseResourceRef } from './args.js';
import * as run from './commands.js';
import { EXIT, UsageError, errorLine, exitCodeFor } from './errors.js';

const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** setTimeout takes at most 2^31-1 ms; a longer delay would fire at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

interface Global {
  timeout: number | undefined;
  node: string | undefined;
}

/** What every command that talks to tandem-nm takes from the global options. */
const nm = (a: Global): run.CommonOptions => ({ timeout: a.timeout, node: a.node });

/** Commands that work on this machine alone have no node manager to forward to. */
function localOnly(a: Global, command: string): void {
  if (a.node !== undefined) throw new UsageError(`${command} runs on this machine: it does not take --node`);
}

/** A group of subcommands (`tandem group …`) that needs one of them. */
const needsSubcommand = (y: Argv<Global>, what: string): Argv<Global> =>
  y.demandCommand(1, `${what} needs a subcommand (tandem ${what} --help)`);

const cli = yargs(hideBin(process.argv))
  .scriptName('tandem')
  .usage(
    '$0 <command> [options]\n\nTalks to tandem-nm on this server (sockets under $TANDEM_HOME/run/tandem); with --node NAME, through it to the node manager of server NAME.',
  )
  .option('timeout', {
    type: 'number',
    describe: 'how long to wait for tandem-nm, in ms (default: 5000 for queries, 30000 for config apply, 600000 for operations)',
  })
  .option('node', {
    type: 'string',
    describe: "ask server NAME's node manager (this server's tandem-nm forwards the request)",
  })
  .check((argv) => {
    parseNode(argv.node);
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
      await run.status({ ...nm(a), json: a.json, watchIntervalMs: a.watch ? parseInterval(a.interval ?? '1s') : undefined });
    },
  )
  .command('cluster', 'start, stop, suspend or resume the cluster service on this server; shut the cluster down', (y) =>
    needsSubcommand(
      (Object.keys(run.CLUSTER_ACTIONS) as (keyof typeof run.CLUSTER_ACTIONS)[])
        .reduce(
          (acc, action) =>
            acc.command(
              action,
              `${action} the cluster service`,
              (c) => c,
              async (a) => run.cluster(action, nm(a)),
            ),
          y,
        )
        .command(
          'shutdown',
          'stop the cluster service on every server, then shut every server down',
          (c) => c.option('reboot', { type: 'boolean', default: false, describe: 'reboot instead of powering off' }),
          async (a) => run.clusterShutdown(a.reboot, nm(a)),
        ),
      'cluster',
    ),
  )
  .command('node', 'take a server out of the cluster, or let one back in', (y) =>
    needsSubcommand(
      y
        .command(
          'down [name]',
          "move the server's groups to other servers, then stop its cluster service and shut it down (default: this server)",
          (c) =>
            c
              .positional('name', { type: 'string' })
              .option('reboot', { type: 'boolean', default: false, describe: 'reboot instead of powering off' }),
          async (a) => run.nodeDown(a.name, a.reboot, nm(a)),
        )
        .command(
          'return <name>',
          'let a server that went down without a clean stop (and waits, isolated) rejoin the cluster',
          (c) => c.positional('name', { type: 'string', demandOption: true }),
          async (a) => run.nodeReturn(a.name, nm(a)),
        ),
      'node',
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
          async (a) => run.group('start', a.name, { ...nm(a), server: a.server }),
        )
        .command(
          'stop <name>',
          'stop a group',
          (c) =>
            c
              .positional('name', { type: 'string', demandOption: true })
              .option('server', { type: 'string', describe: 'the server it runs on' }),
          async (a) => run.group('stop', a.name, { ...nm(a), server: a.server }),
        )
        .command(
          'restart <name>',
          'stop and start a group where it runs',
          (c) =>
            c
              .positional('name', { type: 'string', demandOption: true })
              .option('server', { type: 'string', describe: 'the server it runs on' }),
          async (a) => run.group('restart', a.name, { ...nm(a), server: a.server }),
        )
        .command(
          'move <name>',
          'move a group to another server',
          (c) =>
            c
              .positional('name', { type: 'string', demandOption: true })
              .option('server', { type: 'string', describe: 'the destination (default: the next in its policy)' }),
          async (a) => run.group('move', a.name, { ...nm(a), server: a.server }),
        )
        .command(
          'failover <name>',
          'fail a group over to the next server of its policy',
          (c) => c.positional('name', { type: 'string', demandOption: true }),
          async (a) => run.group('failover', a.name, nm(a)),
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
            async (a) => run.resource(action, parseResourceRef(a.name, a.group), nm(a)),
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
            async (a) => run.monitor(action, a.names, nm(a)),
          ),
        y,
      ),
      'monitor',
    ),
  )
  .command('config', 'validate, show, compare or apply the configuration', (y) =>
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
          async (a) => run.configValidate(a.file, { ...nm(a), local: a.local }),
        )
        .command(
          'show',
          'print the configuration tandem-nm uses, with its generation',
          (c) => c.option('json', { type: 'boolean', default: false, describe: 'print JSON: path, generation, yaml' }),
          async (a) => run.configShow({ ...nm(a), json: a.json }),
        )
        .command(
          'diff <file>',
          'what applying FILE would change in the running configuration, and which restart that needs',
          (c) =>
            c
              .positional('file', { type: 'string', demandOption: true })
              .option('json', { type: 'boolean', default: false, describe: 'print the reply as JSON' }),
          async (a) => run.configDiff(a.file, { ...nm(a), json: a.json }),
        )
        .command(
          'apply <file>',
          'validate FILE, install it on every server with the next generation, and say what to restart',
          (c) =>
            c
              .positional('file', { type: 'string', demandOption: true })
              .option('json', { type: 'boolean', default: false, describe: 'print the reply as JSON' }),
          async (a) => run.configApply(a.file, { ...nm(a), json: a.json }),
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
      await run.events({ ...nm(a), limit: a.limit, json: a.json });
    },
  )
  .command('logs', 'collect logs, configuration and status into one archive', (y) =>
    needsSubcommand(
      y.command(
        'collect',
        'write a .tar.gz of the logs, the configuration and a status snapshot',
        (c) => c.option('output', { alias: 'o', type: 'string', describe: 'the archive to write (default: beside the logs directory)' }),
        async (a) => run.logsCollect({ ...nm(a), output: a.output }),
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
        async (a) => {
          localOnly(a, 'keys generate');
          run.keysGenerate({ force: a.force });
        },
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
    async (a) => {
      localOnly(a, 'witness');
      // Loaded only for this command: every other command starts without node:http (status latency).
      const { parseWitnessPort, parseWitnessTtl, runWitness } = await import('./witness.js');
      await runWitness({ port: parseWitnessPort(a.port), bind: a.bind, ttlMs: parseWitnessTtl(a.ttl) });
    },
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
