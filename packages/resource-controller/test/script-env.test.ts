import t from 'tap';
import { scriptEnv, startEventFor, startValues, type StartCause } from '@tandem/resource-controller';

const target = (server: string) => ({
  cluster: 'shop',
  server,
  group: { name: 'web', servers: ['node1', 'node2', 'node3'] },
  resource: 'app',
});

t.test('the start event follows the cause', async (t) => {
  const cases: [StartCause, string][] = [
    ['OPERATOR', 'START'],
    ['STARTUP', 'START'],
    ['FAILOVER', 'FAILOVER'],
    ['MONITOR', 'RECOVER'],
    ['FINAL_ACTION', 'START'],
    ['UNSPECIFIED', 'START'],
  ];
  for (const [cause, event] of cases) t.equal(startEventFor(cause), event, `${cause} → ${event}`);
});

t.test('a start script gets the table of docs/architecture.md, without TANDEM_FACTOR', async (t) => {
  const cases: { server: string; event: 'START' | 'FAILOVER' | 'RECOVER'; disk: boolean; want: Record<string, string> }[] = [
    {
      server: 'node1',
      event: 'START',
      disk: false,
      want: { TANDEM_EVENT: 'START', TANDEM_SERVER: 'HOME', TANDEM_PRIORITY: '1', TANDEM_DISK: 'SUCCESS' },
    },
    {
      server: 'node2',
      event: 'FAILOVER',
      disk: false,
      want: { TANDEM_EVENT: 'FAILOVER', TANDEM_SERVER: 'OTHER', TANDEM_PRIORITY: '2', TANDEM_DISK: 'SUCCESS' },
    },
    {
      server: 'node3',
      event: 'RECOVER',
      disk: true,
      want: { TANDEM_EVENT: 'RECOVER', TANDEM_SERVER: 'OTHER', TANDEM_PRIORITY: '3', TANDEM_DISK: 'FAILURE' },
    },
  ];
  for (const c of cases) {
    const env = scriptEnv(target(c.server), {
      phase: 'start',
      values: startValues(c.event, c.server, ['node1', 'node2', 'node3'], c.disk),
    });
    t.same(
      env,
      { ...c.want, TANDEM_GROUP: 'web', TANDEM_RESOURCE: 'app', TANDEM_SERVER_NAME: c.server, TANDEM_CLUSTER: 'shop' },
      `${c.event} on ${c.server}`,
    );
    t.notOk('TANDEM_FACTOR' in env, 'no TANDEM_FACTOR on start');
  }
});

t.test('a stop script sees the event of the last start', async (t) => {
  const lastStart = startValues('FAILOVER', 'node2', ['node1', 'node2', 'node3'], true);
  const env = scriptEnv(target('node2'), { phase: 'stop', factor: 'GROUPMOVE', lastStart });
  t.same(env, {
    TANDEM_EVENT: 'FAILOVER',
    TANDEM_SERVER: 'OTHER',
    TANDEM_PRIORITY: '2',
    TANDEM_DISK: 'FAILURE',
    TANDEM_FACTOR: 'GROUPMOVE',
    TANDEM_GROUP: 'web',
    TANDEM_RESOURCE: 'app',
    TANDEM_SERVER_NAME: 'node2',
    TANDEM_CLUSTER: 'shop',
  });
});

t.test('a server outside the group servers gets priority 0 and OTHER', async (t) => {
  t.same(startValues('START', 'node9', ['node1'], false), {
    TANDEM_EVENT: 'START',
    TANDEM_SERVER: 'OTHER',
    TANDEM_PRIORITY: '0',
    TANDEM_DISK: 'SUCCESS',
  });
});
