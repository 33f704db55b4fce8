/** tandem-rm: wiring only. The monitors and the ladder live in resource-monitor.ts. */
import { EventSubscriber, groupOperationTimeoutMs, runDaemon } from '@tandem/core';
import { RpcNm, RpcRc } from './clients.js';
import { ResourceMonitor } from './resource-monitor.js';

await runDaemon({
  name: 'rm',
  core: true,
  async setup(ctx) {
    const rc = new RpcRc(ctx.paths, (group) =>
      groupOperationTimeoutMs({ resources: ctx.config.groups.find((g) => g.name === group)?.resources ?? [] }),
    );
    const nm = new RpcNm(ctx.paths);
    const rm = new ResourceMonitor({
      server: ctx.server,
      config: ctx.config,
      rc,
      nm,
      alerts: ctx.alerts,
      events: ctx.events,
      log: ctx.log,
    });
    const rcEvents = new EventSubscriber([ctx.paths.events('rc')], ['resource', 'group']);
    void rcEvents.run(() => rm.hint());
    return {
      handle: rm.handle,
      async stop() {
        await rm.stop();
        rcEvents.close();
        rc.close();
        nm.close();
      },
    };
  },
});
