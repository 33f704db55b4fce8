// In an emergency the guard removes the floating IPs the activation ledger records (DESIGN.md
// 6.7). Root only: the address lives on a veth interface in a network namespace of the test's own.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Ledger, readLedger } from '@tandem/core';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const ns = `tnd-gf-${process.pid % 100000}`;
const ip = (...args: string[]): string => execFileSync('ip', ['netns', 'exec', ns, 'ip', ...args], { encoding: 'utf8' });

if (process.getuid?.() !== 0) {
  t.skip('removing floating IPs needs root (network namespaces)');
} else {
  t.test('the floating IPs of the ledger are removed and their entries cleared', async (t) => {
    execFileSync('ip', ['netns', 'add', ns]);
    t.teardown(() => execFileSync('ip', ['netns', 'del', ns]));
    // A veth pair (this kernel may have no dummy driver); d0 carries the address.
    ip('link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1');
    ip('link', 'set', 'd0', 'up');
    ip('addr', 'add', '10.99.0.5/24', 'dev', 'd0');
    const dir = mkdtempSync('/tmp/tnd-gf.');
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const ledger = new Ledger(dir);
    const entry = { kind: 'fip', address: '10.99.0.5/24', interface: 'd0', group: 'web', resource: 'vip', owner: 'rc' } as const;
    ledger.record(entry);
    // An address that is already gone counts as removed; one on a missing interface cannot be.
    ledger.record({ ...entry, address: '10.99.0.6/24' });
    ledger.record({ ...entry, address: '10.99.0.7/24', interface: 'nosuch0' });

    // The guard acts in its own network namespace: run the release step inside the test's.
    const out = execFileSync(
      'ip',
      [
        'netns',
        'exec',
        ns,
        process.execPath,
        '--input-type=module',
        '-e',
        `const { removeLedgerAddresses } = await import('@tandem/guard'); console.log(JSON.stringify(await removeLedgerAddresses(${JSON.stringify(dir)}, 5000)));`,
      ],
      { cwd: ROOT, encoding: 'utf8' },
    );
    const result = JSON.parse(out) as { removed: { address: string }[]; failed: { detail: string }[] };
    t.same(result.removed.map((e) => e.address).sort(), ['10.99.0.5/24', '10.99.0.6/24']);
    t.equal(result.failed.length, 1);
    t.match(result.failed[0]?.detail, /cannot remove 10\.99\.0\.7\/24 from nosuch0/);
    t.notMatch(ip('-4', '-o', 'addr', 'show', 'dev', 'd0'), /10\.99\.0\.5/, 'the address is gone from the interface');
    t.same(
      readLedger(dir).map((e) => (e.kind === 'fip' ? e.address : '')),
      ['10.99.0.7/24'],
      'only the entry that could not be released stays in the ledger',
    );
  });
}
