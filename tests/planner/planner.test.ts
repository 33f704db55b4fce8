/**
 * Golden tests of the placement planner: each YAML file here is one scenario (description,
 * groups, servers, placement, event) and the plan it must produce (expect: actions, refusals).
 * Group fields left out take the configuration defaults: autoStart true, autoFailback false,
 * exclusive false. `expect.scripts`, when given, lists what each planned start's scripts see,
 * as `group@server TANDEM_EVENT/TANDEM_SERVER/TANDEM_PRIORITY` (the reference's transition tables).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parse } from 'yaml';
import {
  plan,
  startValues,
  type GroupPlacement,
  type Plan,
  type PlanEvent,
  type PlannerGroup,
  type PlannerServer,
} from '@tandem/resource-controller';

interface Scenario {
  description: string;
  groups: (Partial<PlannerGroup> & { name: string; servers: string[] })[];
  servers: PlannerServer[];
  placement: GroupPlacement[] | null;
  event: PlanEvent;
  expect: Partial<Plan> & { scripts?: string[] };
}

const dir = dirname(fileURLToPath(import.meta.url));
const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));

t.ok(files.length >= 40, 'there are at least 40 planner scenarios');

for (const file of files) {
  const scenario = parse(readFileSync(join(dir, file), 'utf8')) as Scenario;
  t.test(`${file}: ${scenario.description}`, async (t) => {
    // A misspelt key would silently test nothing.
    t.strictSame(
      Object.keys(scenario).filter((k) => !['description', 'groups', 'servers', 'placement', 'event', 'expect'].includes(k)),
      [],
      'the scenario has only known keys',
    );
    t.strictSame(
      Object.keys(scenario.expect).filter((k) => !['actions', 'refusals', 'scripts'].includes(k)),
      [],
      'the expectation has only known keys',
    );
    t.match(scenario.description, /^[^\n]+$/, 'the description is one line');
    const groups = scenario.groups.map((g) => ({ autoStart: true, autoFailback: false, exclusive: false, ...g }));
    const got = plan({ groups, servers: scenario.servers, placement: scenario.placement ?? [], event: scenario.event });
    t.strictSame(got, { actions: scenario.expect.actions ?? [], refusals: scenario.expect.refusals ?? [] });
    if (scenario.expect.scripts) {
      const scripts = got.actions.flatMap((a) => {
        if (a.kind !== 'start') return [];
        const v = startValues(a.event, a.server, groups.find((g) => g.name === a.group)?.servers ?? [], false);
        return [`${a.group}@${a.server} ${v.TANDEM_EVENT}/${v.TANDEM_SERVER}/${v.TANDEM_PRIORITY}`];
      });
      t.strictSame(scripts, scenario.expect.scripts, 'the start scripts see the expected environment');
    }
  });
}
