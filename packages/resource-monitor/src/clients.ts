/**
 * What rm asks of the other daemons, as two small interfaces (tests give fakes that record the
 * calls), and their implementations over RPC: rc for group facts and recovery, nm for final actions.
 */
import { RpcClient, type Paths } from '@tandem/core';
import { v1, type tandem } from '@tandem/protocol';
import type { GroupFacts } from './targets.js';

export interface RcApi {
  groups(): Promise<GroupFacts[]>;
  restartResource(group: string, resource: string): Promise<void>;
  restartGroup(group: string): Promise<void>;
  failoverGroup(group: string): Promise<void>;
  stopGroup(group: string): Promise<void>;
}

export interface FinalActionOrder {
  action: string;
  group: string;
  reason: string;
  /** the monitor that asks */
  source: string;
}

export interface NmApi {
  finalAction(order: FinalActionOrder): Promise<void>;
}

const STATUS_TIMEOUT_MS = 2000;
const NM_TIMEOUT_MS = 10_000;

/** rc over RPC. A recovery call may take as long as the group's stop and start: `actionTimeoutMs(group)`. */
export class RpcRc implements RcApi {
  readonly #client: RpcClient;
  readonly #actionTimeoutMs: (group: string) => number;

  constructor(paths: Paths, actionTimeoutMs: (group: string) => number) {
    this.#client = new RpcClient(paths.rpc('rc'), { origin: 'tandem-rm', name: 'tandem-rc' });
    this.#actionTimeoutMs = actionTimeoutMs;
  }

  async groups(): Promise<GroupFacts[]> {
    const reply = await this.#client.call({ status: {} }, { timeoutMs: STATUS_TIMEOUT_MS });
    return reply.groups?.groups ?? [];
  }

  async restartResource(group: string, resource: string): Promise<void> {
    const action = v1.ResourceAction.RESOURCE_ACTION_RESTART;
    await this.#client.call(
      { resource: { action, group, resource, cause: v1.Cause.CAUSE_MONITOR } },
      { timeoutMs: this.#actionTimeoutMs(group) },
    );
  }

  async restartGroup(group: string): Promise<void> {
    await this.#group(v1.GroupAction.GROUP_ACTION_RESTART, group, v1.Cause.CAUSE_MONITOR);
  }

  async failoverGroup(group: string): Promise<void> {
    await this.#group(v1.GroupAction.GROUP_ACTION_FAILOVER, group, v1.Cause.CAUSE_MONITOR);
  }

  async stopGroup(group: string): Promise<void> {
    await this.#group(v1.GroupAction.GROUP_ACTION_STOP, group, v1.Cause.CAUSE_FINAL_ACTION);
  }

  async #group(action: tandem.v1.GroupAction, group: string, cause: tandem.v1.Cause): Promise<void> {
    await this.#client.call({ group: { action, group, cause } }, { timeoutMs: this.#actionTimeoutMs(group) });
  }

  close(): void {
    this.#client.close();
  }
}

export class RpcNm implements NmApi {
  readonly #client: RpcClient;

  constructor(paths: Paths) {
    this.#client = new RpcClient(paths.rpc('nm'), { origin: 'tandem-rm', name: 'tandem-nm' });
  }

  async finalAction(order: FinalActionOrder): Promise<void> {
    await this.#client.call({ finalAction: order }, { timeoutMs: NM_TIMEOUT_MS });
  }

  close(): void {
    this.#client.close();
  }
}
