/**
 * @module @tandem/mirror-agent
 * The mirror agent's request handling, for tests. Importing this module starts nothing.
 */
export { MirrorAgent } from './mirror-agent.js';
