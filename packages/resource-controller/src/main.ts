/** tandem-rc: wiring only. The controller lives in resource-controller.ts. */
import { runDaemon } from '@tandem/core';
import { ResourceController } from './resource-controller.js';

await runDaemon({
  name: 'rc',
  core: true,
  // every group stops on an orderly stop; stop scripts have their own timeouts
  stopTimeoutMs: 60_000,
  setup: async (ctx) => {
    const controller = new ResourceController(ctx);
    return { handle: (request) => controller.handle(request), stop: (reason) => controller.shutdown(reason) };
  },
});
