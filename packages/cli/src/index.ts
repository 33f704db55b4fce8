/**
 * @module @tandem/cli
 * The pure pieces of the `tandem` command, for tests. Importing this module runs nothing; the
 * command itself is dist/main.js.
 */
export { parseInterval, parseResourceRef } from './args.js';
export { EXIT, UsageError, errorLine, exitCodeFor } from './errors.js';
export {
  formatAlerts,
  formatPaths,
  formatProblems,
  formatStatus,
  formatTime,
  daemonRows,
  groupRows,
  monitorRows,
  renderTable,
  serverRows,
  toJsonText,
} from './format.js';
