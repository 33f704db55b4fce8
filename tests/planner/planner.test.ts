/**
 * Golden tests of the placement planner: each YAML file here is one scenario (description,
 * groups, servers, placement, event) and the plan it must produce (expect: actions, refusals).
 * Group fields left out take the configuration defaults: autoStart true, autoFailback false,
 * exclusive false.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parse } from 'yaml';
import { plan, type GroupPlacement, type Plan, type PlanEvent, type PlannerGroup, type PlannerServer } from '@tandem/resource-controller';

interface Scenario {
  description: string;
  groups: (Partial<PlannerGroup> & { name: string; servers: string[] })[];
  servers: PlannerServer[];
  placement: GroupPlacement[] | null;
  event: PlanEvent;
  expect: Plan;
}

const dir = dirname(fileURLToPath(import.meta.url));
const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));

t.ok(files.length >= 12, 'there are at least 12 planner scenarios');

for (const file of files) {
  const scenario = parse(readFileSync(join(dir, file), 'utf8')) as Scenario;
  t.test(`${file}: ${scenario.description}`, async (t) => {
    const groups = scenario.groups.map((g) => ({ autoStart: true, autoFailback: false, exclusive: false, ...g }));
    const got = plan({ groups, servers: scenario.servers, placement: scenario.placement ?? [], event: scenario.event });
    t.same(got, { actions: scenario.expect.actions ?? [], refusals: scenario.expect.refusals ?? [] });
  });
}
