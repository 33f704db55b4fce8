/** tandem-rc: wiring only. The controller lives in resource-controller.ts. */
import { runDaemon } from '@tandem/core';
import { rcStopTimeoutMs } from './drivers/index.js';
import { killLeftovers } from './leftovers.js';
import { ResourceController } from './resource-controller.js';

await runDaemon({
  name: 'rc',
  core: true,
  // Every group stops on an orderly stop: it may take as long as all the resources' stops.
  stopTimeoutMs: rcStopTimeoutMs,
  setup: async (ctx) => {
    // Before serving: what a previous rc left running would otherwise run twice.
    await killLeftovers(ctx);
    const controller = new ResourceController(ctx);
    return {
      handle: (request) => controller.handle(request),
      stop: async (reason) => {
        await controller.shutdown(reason);
        // Whatever is still recorded is still active (a resource that failed to stop): that is for the guard.
        const held = ctx.ledger.list().filter((e) => e.owner === 'rc');
        if (held.length > 0)
          throw new Error(`${held.length} activation(s) still held: ${held.map((e) => `${e.group}/${e.resource}`).join(', ')}`);
      },
    };
  },
});
