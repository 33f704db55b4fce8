import { runDaemon } from '@tandem/core';
import { HeartbeatDaemon } from './heartbeat.js';

await runDaemon({
  name: 'hb',
  core: true,
  setup: async (ctx) => {
    const hb = new HeartbeatDaemon(ctx);
    await hb.start();
    return hb;
  },
});
