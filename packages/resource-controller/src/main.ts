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
    return { handle: (request) => controller.handle(request), stop: (reason) => controller.shutdown(reason) };
  },
});
