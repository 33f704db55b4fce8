import t from 'tap';
import { TRANSITIONS, canTransition, clusterTransition, type ClusterCommandName, type ServiceState } from '@tandem/node-manager';

// [state, command, next state or the CONFLICT message]
const table: [ServiceState, ClusterCommandName, ServiceState | RegExp][] = [
  ['online', 'stop', 'stopped'],
  ['online', 'suspend', 'suspended'],
  ['online', 'start', /cluster is already started/],
  ['online', 'resume', /cluster is not suspended/],
  ['suspended', 'resume', 'online'],
  ['suspended', 'stop', 'stopped'],
  ['suspended', 'suspend', /cluster is already suspended/],
  ['suspended', 'start', /use cluster resume/],
  ['stopped', 'start', 'online'],
  ['stopped', 'stop', /cluster is already stopped/],
  ['stopped', 'suspend', /cluster is stopped: use cluster start/],
  ['stopped', 'resume', /cluster is stopped: use cluster start/],
  ['starting', 'start', /still starting/],
  ['starting', 'stop', /still starting/],
  ['starting', 'suspend', /still starting/],
  ['starting', 'resume', /still starting/],
];

for (const [state, command, expected] of table) {
  t.test(`cluster ${command} while ${state} ${expected instanceof RegExp ? 'is a conflict' : `leads to ${expected}`}`, async (t) => {
    if (expected instanceof RegExp) t.throws(() => clusterTransition(state, command), { code: 'CONFLICT', message: expected });
    else t.equal(clusterTransition(state, command), expected);
  });
}

t.test('every command result is an allowed transition and every state can leave', async (t) => {
  for (const [state, command, expected] of table) {
    if (!(expected instanceof RegExp)) t.ok(canTransition(state, expected), `${state} -> ${expected} (${command})`);
  }
  for (const [state, targets] of Object.entries(TRANSITIONS)) t.ok(targets.length > 0, `${state} has a way out`);
  t.notOk(canTransition('stopped', 'suspended'), 'a stopped service cannot be suspended');
  t.notOk(canTransition('online', 'starting'), 'nothing goes back to starting');
  t.ok(canTransition('starting', 'stopped'), 'a failed startup leaves the service stopped');
});
