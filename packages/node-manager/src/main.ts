/** tandem-nm: the node manager process (pm2 app `tandem-nm`). Wiring only; see node-manager.ts. */
import { runDaemon } from '@tandem/core';
import { NodeManager } from './node-manager.js';

await runDaemon({
  name: 'nm',
  core: true,
  setup: async (ctx) => {
    const nm = new NodeManager(ctx);
    // More than one server: the CURVE link to the other node managers (a missing key stops the start here).
    await nm.openMembership();
    // Startup waits for rc and rm, which need nm's socket to be up: it runs after setup returns.
    void nm.startup();
    return { handle: nm.handle, stop: (reason) => nm.stop(reason) };
  },
});
