/**
 * The network-partition decision (DESIGN.md 6.2): from what this server hears and what the
 * outside checks answered, does its partition survive? A pure function; docs/partition.md
 * states the rules it implements.
 */
import { FENCE_MARGIN_MS, type Config } from '@tandem/core';

export type PartitionMethod = Config['cluster']['networkPartition']['methods'][number];

/** What the witness said to this partition's request for the lease. */
export type WitnessOutcome =
  | { result: 'granted'; holder: string[]; expiresMs: number }
  | { result: 'refused'; holder: string[] }
  | { result: 'unavailable'; reason: string };

/** Whether any ping target answered. */
export type PingOutcome =
  { result: 'answered'; target: string } | { result: 'none'; targets: string[]; reason: string } | { result: 'not-configured' };

/** Whether this partition holds the lease record on shared storage. */
export type DiskOutcome =
  | { result: 'held'; holder: string[]; expiresAtMs: number }
  | { result: 'held-by-other'; holder: string[]; server: string }
  | { result: 'unavailable'; reason: string };

export interface PartitionChecks {
  witness?: WitnessOutcome;
  ping?: PingOutcome;
  disk?: DiskOutcome;
}

export interface PartitionInput {
  /** cluster.networkPartition.methods, in configuration order */
  methods: readonly PartitionMethod[];
  /** every server, in configuration order */
  servers: readonly string[];
  /** this server */
  self: string;
  /** the servers this server can still hear (itself included or not: it is always counted) */
  heard: Iterable<string>;
  /** the outcomes of the checks that ask the outside world; a missing one cannot decide */
  checks: PartitionChecks;
}

export type Verdict = 'survive' | 'lose' | 'tie';

export interface MethodVerdict {
  /** `first-server` is the tie-break applied when no witness or disk method is configured */
  method: PartitionMethod | 'first-server';
  verdict: Verdict;
  /** one readable line, starting with the method: `majority: 2 of 3 servers (s1, s2) are heard` */
  reason: string;
  /** lost only because the arbiter (witness, disk) could not be reached or used in time: what happened, as `method: why` */
  unreachable?: string;
}

export interface PartitionDecision {
  survive: boolean;
  /** one readable line naming the method that decided */
  reason: string;
  perMethod: MethodVerdict[];
}

/** A lease holder as a witness answer or a lease record carries it: a non-empty list of server names. */
export const isServerList = (v: unknown): v is string[] => Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === 'string');

/** The methods that grant one side only: they can break a tie. */
export const ARBITER_METHODS: readonly PartitionMethod[] = ['witness', 'disk'];

const list = (names: readonly string[]): string => names.join(', ');

/** This server's partition: the configured servers it hears, itself included, in configuration order. */
export function partitionMembers(servers: readonly string[], self: string, heard: Iterable<string>): string[] {
  const set = new Set(heard);
  set.add(self);
  return servers.filter((s) => set.has(s));
}

function majorityVerdict(servers: readonly string[], members: string[]): MethodVerdict {
  const n = servers.length;
  const k = members.length;
  const seen = `${k} of ${n} servers (${list(members)}) ${k === 1 ? 'is' : 'are'} heard`;
  if (2 * k > n) return { method: 'majority', verdict: 'survive', reason: `majority: ${seen}` };
  if (2 * k < n) return { method: 'majority', verdict: 'lose', reason: `majority: only ${seen}, not more than half` };
  return { method: 'majority', verdict: 'tie', reason: `majority: tie, ${seen}, exactly half` };
}

const cannotDecide = (method: PartitionMethod, why: string, unreachable = false): MethodVerdict => ({
  method,
  verdict: 'lose',
  reason: `${method}: ${why}: a server that cannot decide loses`,
  ...(unreachable ? { unreachable: `${method}: ${why}` } : {}),
});

function witnessVerdict(outcome: WitnessOutcome | undefined): MethodVerdict {
  if (!outcome) return cannotDecide('witness', 'not asked');
  switch (outcome.result) {
    case 'granted':
      return { method: 'witness', verdict: 'survive', reason: `witness: lease granted to ${list(outcome.holder)}` };
    case 'refused':
      return { method: 'witness', verdict: 'lose', reason: `witness: lease held by ${list(outcome.holder)}` };
    case 'unavailable':
      return cannotDecide('witness', `unavailable (${outcome.reason})`, true);
  }
}

function pingVerdict(outcome: PingOutcome | undefined): MethodVerdict {
  if (!outcome) return cannotDecide('ping', 'not checked');
  switch (outcome.result) {
    case 'answered':
      return { method: 'ping', verdict: 'survive', reason: `ping: ${outcome.target} answered` };
    case 'none':
      return {
        method: 'ping',
        verdict: 'lose',
        reason: `ping: none of ${list(outcome.targets)} answered (${outcome.reason}): this server lost its own network`,
      };
    case 'not-configured':
      return cannotDecide('ping', 'no ping targets are configured');
  }
}

function diskVerdict(outcome: DiskOutcome | undefined): MethodVerdict {
  if (!outcome) return cannotDecide('disk', 'not checked');
  switch (outcome.result) {
    case 'held':
      return { method: 'disk', verdict: 'survive', reason: 'disk: lease held by this partition' };
    case 'held-by-other':
      return { method: 'disk', verdict: 'lose', reason: `disk: lease held by ${list(outcome.holder)} (written by ${outcome.server})` };
    case 'unavailable':
      return cannotDecide('disk', `unavailable (${outcome.reason})`, true);
  }
}

/** The verdict of one method; majority is pure, the others read their check's outcome. */
export function methodVerdict(
  method: PartitionMethod,
  servers: readonly string[],
  members: string[],
  checks: PartitionChecks,
): MethodVerdict {
  switch (method) {
    case 'majority':
      return majorityVerdict(servers, members);
    case 'witness':
      return witnessVerdict(checks.witness);
    case 'ping':
      return pingVerdict(checks.ping);
    case 'disk':
      return diskVerdict(checks.disk);
  }
}

/**
 * Survive or lose. Every configured method must say survive (they are ANDed); a method that
 * cannot decide loses. A majority tie is decided by the arbiters (witness, disk) when one is
 * configured, otherwise by whether this partition holds the first server in configuration order.
 */
export function decidePartition(input: PartitionInput): PartitionDecision {
  const { methods, servers, self } = input;
  if (!servers.includes(self)) {
    return { survive: false, reason: `this server ${self} is not in the configuration: it cannot decide, so it loses`, perMethod: [] };
  }
  if (methods.length === 0) {
    return { survive: false, reason: 'no partition method is configured: a server that cannot decide loses', perMethod: [] };
  }
  const members = partitionMembers(servers, self, input.heard);
  const perMethod = methods.map((m) => methodVerdict(m, servers, members, input.checks));

  // The reason named is majority's when it loses (it needs no outside answer), else the first
  // method that answered lose, else one that was not asked (the caller stopped at an earlier loss).
  const asked = (v: MethodVerdict): boolean =>
    v.method === 'majority' || input.checks[v.method as Exclude<PartitionMethod, 'majority'>] !== undefined;
  const losing =
    perMethod.find((v) => v.method === 'majority' && v.verdict === 'lose') ??
    perMethod.find((v) => v.verdict === 'lose' && asked(v)) ??
    perMethod.find((v) => v.verdict === 'lose');
  if (losing) return { survive: false, reason: losing.reason, perMethod };

  const tie = perMethod.find((v) => v.verdict === 'tie');
  const survivors = perMethod.filter((v) => v.verdict === 'survive');
  if (tie && !survivors.some((v) => ARBITER_METHODS.includes(v.method as PartitionMethod))) {
    const first = servers[0] as string;
    const holdsFirst = members.includes(first);
    const tieBreak: MethodVerdict = holdsFirst
      ? { method: 'first-server', verdict: 'survive', reason: `broken by the first server: this partition holds ${first}` }
      : { method: 'first-server', verdict: 'lose', reason: `broken by the first server: ${first} is not in this partition` };
    perMethod.push(tieBreak);
    if (!holdsFirst) return { survive: false, reason: `${tie.reason}, ${tieBreak.reason}`, perMethod };
    return { survive: true, reason: [`${tie.reason}, ${tieBreak.reason}`, ...survivors.map((v) => v.reason)].join('; '), perMethod };
  }
  const reasons = perMethod.map((v) => (v.verdict === 'tie' ? `${v.reason}, decided by the arbiter` : v.reason));
  return { survive: true, reason: reasons.join('; '), perMethod };
}

/** An arbiter lease this side holds: until when (on the caller's monotonic clock) and the servers it was granted to. */
export interface HeldLease {
  untilMs: number;
  holder: string[];
}

export interface HoldOnInput {
  /** the decision of a renewal */
  decision: PartitionDecision;
  /** the lease the last decision that survived was granted, if any */
  lease: HeldLease | undefined;
  /** this server's partition now */
  members: readonly string[];
  nowMs: number;
  /** when the next attempt starts, how long it may take, and the emergency deadline after it */
  retryMs: number;
  attemptMs: number;
  deadlineMs: number;
}

/**
 * A renewal that could not reach its arbiter (docs/partition.md, "Renewal"): may this side keep
 * running on the lease it still holds and ask again? Only when every method that said lose could
 * merely not reach its arbiter; when the lease was granted to servers that are all still in this
 * partition (one on the other side could renew it there); and when enough of it is left for
 * another attempt, the emergency procedure after it and the margin. Returns the line to log, or
 * undefined: the decision stands.
 */
export function holdOnLease(i: HoldOnInput): string | undefined {
  const { decision, lease } = i;
  if (decision.survive || !lease) return undefined;
  const losing = decision.perMethod.filter((v) => v.verdict === 'lose');
  if (losing.length === 0 || !losing.every((v) => v.unreachable !== undefined)) return undefined;
  if (!lease.holder.every((s) => i.members.includes(s))) return undefined;
  const left = Math.floor(lease.untilMs - i.nowMs);
  if (left - i.retryMs - i.attemptMs - i.deadlineMs - FENCE_MARGIN_MS <= 0) return undefined;
  return `${losing.map((v) => v.unreachable).join('; ')}; this side holds the lease for ${left} ms more: asking again in ${i.retryMs} ms`;
}
