/**
 * The interface every resource type implements. Each call is bounded by the resource's own
 * timeouts; a failure is thrown as an Error whose message says what went wrong in one line.
 */

export interface DriverStatus {
  /** the process the resource runs (async exec), 0 when none */
  pid: number;
  /** that process still exists */
  alive: boolean;
  /** what the driver knows beyond the state, e.g. "process exited with code 1" */
  detail: string;
}

export interface ResourceDriver {
  /** Brings the resource online; resolves when it is, rejects when it could not. */
  start(env: Record<string, string>): Promise<void>;
  /** Takes the resource offline and releases everything it holds; rejects when it could not. */
  stop(env: Record<string, string>): Promise<void>;
  status(): DriverStatus;
  /**
   * The local recovery of a server returning to the cluster (TANDEM_EVENT=RECOVER): runs what
   * the start would, but leaves the resource offline. Only resources that run scripts have one.
   */
  recover?(env: Record<string, string>): Promise<void>;
}
