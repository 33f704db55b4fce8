import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { TandemError, validateConfigText, type Config } from '@tandem/core';
import { configGenerationPath, diffConfigs, installConfig, nextGeneration, readGeneration, type ChangeLevel } from '@tandem/node-manager';

interface Parts {
  cluster: string;
  servers: string;
  groups: string;
  monitors: string;
}

const BASE: Parts = {
  cluster: 'cluster: { name: demo, heartbeat: { interval: 1s, timeout: 5s }, emergency: { action: exec, command: "echo fenced" } }',
  servers: 'servers:\n  - { name: node1, interconnects: [10.0.0.1] }\n  - { name: node2, interconnects: [10.0.0.2] }',
  groups: 'groups:\n  - name: web\n    resources:\n      - { name: app, type: exec, mode: async, start: "exec sleep 100", timeout: 60s }',
  monitors: 'monitors:\n  - { name: app-alive, type: pid, target: app, interval: 5s }',
};

const SHOP = '  - name: shop\n    resources:\n      - { name: job, type: exec, start: "true" }';

const text = (change: Partial<Parts> = {}): string => {
  const p = { ...BASE, ...change };
  return `${p.cluster}\n${p.servers}\n${p.groups}\n${p.monitors}\n`;
};

function config(change: Partial<Parts> = {}): Config {
  const v = validateConfigText(text(change));
  if (!v.ok) throw new Error(`test configuration is invalid: ${v.problems.join('; ')}`);
  return v.config;
}

const diffCases: { name: string; before?: Partial<Parts>; after: Partial<Parts>; changes: string[]; level: ChangeLevel }[] = [
  { name: 'the same file changes nothing', after: {}, changes: [], level: 'none' },
  {
    name: 'the same durations written differently change nothing',
    after: {
      cluster:
        'cluster: { name: demo, heartbeat: { interval: 1000ms, timeout: 5000ms }, emergency: { action: exec, command: "echo fenced" } }',
      groups: BASE.groups.replace('60s', '1m'),
    },
    changes: [],
    level: 'none',
  },
  {
    name: 'a resource setting is named by group and resource, with its unit',
    after: { groups: BASE.groups.replace('60s', '30s') },
    changes: ['groups[web].resources[app].timeout: 60000 ms -> 30000 ms'],
    level: 'restart-daemons',
  },
  {
    name: 'a new group is one line, wherever it is inserted, and the others are matched by name',
    after: { groups: `groups:\n${SHOP}\n${BASE.groups.slice('groups:\n'.length)}` },
    changes: ['groups: + shop'],
    level: 'restart-daemons',
  },
  {
    name: 'a removed monitor is one line',
    after: { monitors: 'monitors: []' },
    changes: ['monitors: - app-alive'],
    level: 'restart-daemons',
  },
  {
    name: 'a monitor setting is named by the key of cluster.yaml',
    after: { monitors: 'monitors:\n  - { name: app-alive, type: pid, target: app, interval: 5s, delayWarning: 90 }' },
    changes: ['monitors[app-alive].delayWarning: 80 -> 90'],
    level: 'restart-daemons',
  },
  {
    name: 'a setting that was unset says so',
    after: { groups: BASE.groups.replace('timeout: 60s', 'timeout: 60s, env: { MODE: fast }') },
    changes: ['groups[web].resources[app].env.MODE: (unset) -> fast'],
    level: 'restart-daemons',
  },
  {
    name: 'a server interconnect added needs the whole cluster restarted',
    after: { servers: BASE.servers.replace('[10.0.0.2]', '[10.0.0.2, 10.1.0.2]') },
    changes: ['servers[node2].interconnects: [10.0.0.2] -> [10.0.0.2, 10.1.0.2]'],
    level: 'restart-cluster',
  },
  {
    name: 'a heartbeat change needs the whole cluster restarted (the quorum lease it derives is not a setting)',
    after: { cluster: BASE.cluster.replace('interval: 1s', 'interval: 500ms') },
    changes: ['cluster.heartbeat.interval: 1000 ms -> 500 ms'],
    level: 'restart-cluster',
  },
  {
    name: 'text with spaces is quoted, a literal secret is hidden',
    after: {
      cluster:
        'cluster: { name: demo, secret: s3cret, heartbeat: { interval: 1s, timeout: 5s }, emergency: { action: exec, command: "echo bye" } }',
    },
    changes: ['cluster.emergency.command: "echo fenced" -> "echo bye"', 'cluster.secret: (unset) -> (hidden)'],
    level: 'restart-cluster',
  },
  {
    name: 'the order of the servers is a change, and so is the failover policy it gives by default',
    after: { servers: 'servers:\n  - { name: node2, interconnects: [10.0.0.2] }\n  - { name: node1, interconnects: [10.0.0.1] }' },
    changes: ['servers: order [node1, node2] -> [node2, node1]', 'groups[web].servers: [node1, node2] -> [node2, node1]'],
    level: 'restart-cluster',
  },
  {
    name: 'a cluster change and a group change together need the whole cluster restarted',
    after: { cluster: BASE.cluster.replace('timeout: 5s', 'timeout: 6s'), groups: `${BASE.groups}\n${SHOP}` },
    changes: ['cluster.heartbeat.timeout: 5000 ms -> 6000 ms', 'cluster.stallLimit: 2500 ms -> 3000 ms', 'groups: + shop'],
    level: 'restart-cluster',
  },
  {
    name: 'a group taken away names only the group, not its resources',
    before: { groups: `${BASE.groups}\n${SHOP}` },
    after: {},
    changes: ['groups: - shop'],
    level: 'restart-daemons',
  },
];

t.test('diffConfigs names each changed setting by its path and says what it needs', async (t) => {
  for (const c of diffCases) {
    t.same(diffConfigs(config(c.before), config(c.after)), { changes: c.changes, level: c.level }, c.name);
  }
});

t.test('the next generation is one more than the highest any server has', async (t) => {
  const cases: [number[], number][] = [
    [[], 1],
    [[0], 1],
    [[0, 0], 1],
    [[3, 5, 4], 6],
  ];
  for (const [generations, next] of cases) t.equal(nextGeneration(generations), next, `[${generations.join(', ')}]`);
});

function place(t: Tap.Test): { dir: string; configPath: string; stateDir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tnd-cfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, configPath: join(dir, 'cluster.yaml'), stateDir: join(dir, 'state') };
}

t.test('a server with no generation file has generation 0, and an unreadable one counts as 0', async (t) => {
  const { stateDir } = place(t);
  t.equal(readGeneration(stateDir), 0, 'no state directory');
  mkdirSync(stateDir);
  for (const [content, generation] of [
    ['', 0],
    ['seven', 0],
    ['-3', 0],
    ['1.5', 0],
    ['12abc', 0],
    ['12\n', 12],
  ] as const) {
    writeFileSync(configGenerationPath(stateDir), content);
    t.equal(readGeneration(stateDir), generation, JSON.stringify(content));
  }
});

t.test('installing writes the file with its old mode, then the generation', async (t) => {
  const { dir, configPath, stateDir } = place(t);
  writeFileSync(configPath, text());
  chmodSync(configPath, 0o664);
  const next = text({ groups: `${BASE.groups}\n${SHOP}` });
  installConfig(configPath, stateDir, next, 1);
  t.equal(readFileSync(configPath, 'utf8'), next);
  t.equal(statSync(configPath).mode & 0o7777, 0o664, 'mode kept (not narrowed by the umask)');
  t.equal(readGeneration(stateDir), 1);
  installConfig(configPath, stateDir, text(), 5);
  t.equal(readFileSync(configPath, 'utf8'), text());
  t.equal(readGeneration(stateDir), 5);
  t.same(readdirSync(dir).sort(), ['cluster.yaml', 'state'], 'no temporary file left');
});

t.test('installing a first file where there was none creates it', async (t) => {
  const { configPath, stateDir } = place(t);
  installConfig(configPath, stateDir, text(), 1);
  t.equal(readFileSync(configPath, 'utf8'), text());
  t.equal(readGeneration(stateDir), 1);
});

t.test('bad input changes nothing: neither the file nor the generation', async (t) => {
  const { configPath, stateDir } = place(t);
  writeFileSync(configPath, text());
  installConfig(configPath, stateDir, text(), 3);
  const refusals: { name: string; yaml: string; generation: number; code: string; message: RegExp }[] = [
    {
      name: 'an invalid file',
      yaml: text({ groups: BASE.groups.replace('60s', 'soon') }),
      generation: 4,
      code: 'BAD_REQUEST',
      message: /^configuration generation 4 is invalid \(1 problem\): groups\[0\]\.resources\[0\]\.timeout: must be a duration/,
    },
    { name: 'not YAML', yaml: 'cluster: [', generation: 4, code: 'BAD_REQUEST', message: /is invalid .*YAML/ },
    {
      name: 'the installed generation again',
      yaml: text({ monitors: 'monitors: []' }),
      generation: 3,
      code: 'CONFLICT',
      message: /^configuration generation 3 is not newer than generation 3 installed here$/,
    },
    { name: 'an older generation', yaml: text({ monitors: 'monitors: []' }), generation: 2, code: 'CONFLICT', message: /not newer/ },
    { name: 'generation 0', yaml: text(), generation: 0, code: 'BAD_REQUEST', message: /not a positive whole number/ },
    { name: 'a fractional generation', yaml: text(), generation: 4.5, code: 'BAD_REQUEST', message: /not a positive whole number/ },
  ];
  for (const r of refusals) {
    t.throws(() => installConfig(configPath, stateDir, r.yaml, r.generation), TandemError, r.name);
    try {
      installConfig(configPath, stateDir, r.yaml, r.generation);
    } catch (err) {
      t.equal((err as TandemError).code, r.code, `${r.name}: code`);
      t.match((err as TandemError).message, r.message, `${r.name}: message`);
    }
    t.equal(readFileSync(configPath, 'utf8'), text(), `${r.name}: file untouched`);
    t.equal(readGeneration(stateDir), 3, `${r.name}: generation untouched`);
  }
});
