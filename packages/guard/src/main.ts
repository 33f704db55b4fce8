import { runDaemon } from '@tandem/core';
import { Guard } from './guard.js';

let guard: Guard | undefined;
await runDaemon({
  name: 'guard',
  core: false,
  setup: async (ctx) => {
    guard = new Guard(ctx);
    await guard.start();
    return guard;
  },
  // The guard is the one that fences: frozen with everything else, it fences on waking instead of exiting.
  onStall: (message) => guard?.stalled(message),
});
