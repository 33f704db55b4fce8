import { runDaemon } from '@tandem/core';
import { MirrorAgent } from './mirror-agent.js';

await runDaemon({ name: 'md', core: true, setup: async () => new MirrorAgent() });
