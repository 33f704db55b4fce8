// The group the cluster scenarios move around: a floating IP and the application behind it (it
// answers with its server's name), and the helpers to see where it runs.
import { APP_PORT, type TestCluster } from './harness.mjs';

/** YAML for `groups:`: group web on `servers`, a floating IP `fip`/24 on ic0 and the application depending on it. */
export function webGroup(fip: string, servers: string[]): string {
  return `  - name: web
    servers: [${servers.join(', ')}]
    resources:
      - { name: vip, type: fip, address: ${fip}/24, interface: ic0 }
      - { name: app, type: exec, mode: async, start: "exec node {APP}", env: { APP_PORT: "${APP_PORT}" }, stopTimeout: 5s, dependsOn: [vip] }`;
}

export interface JsonGroup {
  name: string;
  state: string;
  server: string;
  resources: { name: string; pid: number }[];
}

/** Group web as a server's node manager shows it (where it runs, in which state). */
export async function web(c: TestCluster, from: string): Promise<JsonGroup | undefined> {
  return (await c.status(from)).groups.find((g: JsonGroup) => g.name === 'web');
}

export async function webOnlineOn(c: TestCluster, server: string, seenFrom: string, timeoutMs = 20_000): Promise<void> {
  await c.waitFor(
    `${seenFrom} to see web online on ${server}`,
    async () => {
      const g = await web(c, seenFrom);
      return g?.state === 'online' && g.server === server;
    },
    timeoutMs,
  );
}
