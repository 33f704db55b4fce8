import { runDaemon } from '@tandem/core';
import { Guard } from './guard.js';

await runDaemon({
  name: 'guard',
  core: false,
  setup: async (ctx) => {
    const guard = new Guard(ctx);
    await guard.start();
    return guard;
  },
});
