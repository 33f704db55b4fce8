/**
 * The states of groups and resources (DESIGN.md section 4), and the one rule that derives a
 * group's state from its resources.
 */

export type ResourceState = 'offline' | 'starting' | 'online' | 'stopping' | 'start-failed' | 'stop-failed';
export type GroupState = 'offline' | 'starting' | 'online' | 'stopping' | 'failed' | 'partial';

/** What a group is doing right now, if anything. */
export type GroupOperation = 'starting' | 'stopping';

/**
 * A group under an operation shows the operation. Otherwise: every resource offline → offline,
 * every resource online → online, a resource that would not stop → failed, some resources
 * online → partial, nothing online but a start failure → failed. A group without resources is
 * online once started.
 */
export function groupState(resources: ResourceState[], operation: GroupOperation | undefined, started: boolean): GroupState {
  if (operation) return operation;
  if (resources.length === 0) return started ? 'online' : 'offline';
  if (resources.every((s) => s === 'offline')) return 'offline';
  if (resources.every((s) => s === 'online')) return 'online';
  if (resources.includes('stop-failed')) return 'failed';
  if (resources.includes('online')) return 'partial';
  return 'failed';
}
