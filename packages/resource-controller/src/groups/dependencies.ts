/**
 * Resource dependency order inside a group: start in dependency order, stop in reverse. The
 * configuration loader has already refused cycles and unknown names.
 */

export interface DependencyNode {
  name: string;
  dependsOn: string[];
}

/** Every resource after the ones it depends on; otherwise in configuration order. */
export function startOrder(resources: DependencyNode[]): string[] {
  const byName = new Map(resources.map((r) => [r.name, r]));
  const order: string[] = [];
  const placed = new Set<string>();
  const visit = (name: string): void => {
    if (placed.has(name)) return;
    placed.add(name);
    for (const dep of byName.get(name)?.dependsOn ?? []) visit(dep);
    order.push(name);
  };
  for (const r of resources) visit(r.name);
  return order;
}

/** The resources that depend on `name`, directly or through others. */
export function dependentsOf(resources: DependencyNode[], name: string): Set<string> {
  const out = new Set<string>();
  let grew = true;
  while (grew) {
    grew = false;
    for (const r of resources) {
      if (out.has(r.name)) continue;
      if (r.dependsOn.some((d) => d === name || out.has(d))) {
        out.add(r.name);
        grew = true;
      }
    }
  }
  return out;
}

/** The resources `name` depends on, directly or through others. */
export function dependenciesOf(resources: DependencyNode[], name: string): Set<string> {
  const byName = new Map(resources.map((r) => [r.name, r]));
  const out = new Set<string>();
  const walk = (n: string): void => {
    for (const dep of byName.get(n)?.dependsOn ?? []) {
      if (out.has(dep)) continue;
      out.add(dep);
      walk(dep);
    }
  };
  walk(name);
  return out;
}
