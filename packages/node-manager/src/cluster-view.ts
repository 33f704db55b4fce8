/**
 * The cluster as this node manager sees it (DESIGN.md sections 4 and 5): each server's state from
 * what hb hears and what its node manager reported, when it entered that state, the groups it
 * last reported, the coordinator, and the servers this one declared down. Pure apart from the
 * memory of the previous view: the caller passes the clock.
 */
import type { PeerView } from './membership/table.js';

export interface PlacedGroup {
  group: string;
  state: string;
}

/** A server as hb reports it. */
export interface HeardServer {
  name: string;
  /** online (heard on some path) or offline */
  state: string;
  incarnation: number;
}

export interface ViewInput {
  /** the configured servers, in configuration order */
  servers: string[];
  self: string;
  /** this server's cluster service state (starting, online, stopped, suspended) or isolated */
  selfState: string;
  /** partition resolution is deciding whether this side survives: no coordinator until it has */
  undecided?: boolean;
  selfIncarnation: number;
  /** the groups that are not offline here */
  localGroups: PlacedGroup[];
  /** the servers as hb reports them now; undefined when hb did not answer (the last answer is kept) */
  heard: HeardServer[] | undefined;
  peers: PeerView[];
  /** this server's resource controller knows the cluster's startup has been planned */
  startupDone: boolean;
}

export interface ServerView {
  name: string;
  /**
   * online | offline | starting | stopped | suspended | isolated | unknown, or unreachable: not
   * heard here but by a server that is (it holds its groups; nothing of it starts elsewhere)
   */
  state: string;
  incarnation: number;
  sinceMs: number;
  groups: PlacedGroup[];
  local: boolean;
}

export interface ClusterView {
  servers: ServerView[];
  coordinator: string;
  startupDone: boolean;
}

export interface StateChange {
  server: string;
  from: string;
  to: string;
}

/** A report from an older life of a server says nothing of the one hb hears now (0: not known). */
const isCurrent = (reported: { incarnation: number }, incarnation: number): boolean =>
  reported.incarnation === 0 || incarnation === 0 || reported.incarnation === incarnation;

/** Whether a peer this server hears reports hearing `server` within its quorum lease. */
function heardElsewhere(server: string, heard: Map<string, HeardServer>, peers: PeerView[]): boolean {
  return peers.some((p) => {
    const h = heard.get(p.server);
    const r = p.reported;
    return (
      p.server !== server &&
      h?.state === 'online' &&
      r !== undefined &&
      isCurrent(r, h.incarnation) &&
      r.hears.includes(server) &&
      !r.lost.some((l) => l.server === server)
    );
  });
}

/** Server states in which a server holds no group and takes part in nothing. */
const GONE = new Set(['offline', 'isolated']);

export class ClusterViewTracker {
  #last: ClusterView | undefined;
  #heard: HeardServer[] = [];
  /** server → the incarnation it had when this server declared it down */
  readonly #declaredDown = new Map<string, number>();
  #startupDone = false;

  get view(): ClusterView | undefined {
    return this.#last;
  }

  /** The servers this one declared down (each with the incarnation it had), for the membership. */
  declaredDown(): { server: string; incarnation: number }[] {
    return [...this.#declaredDown].map(([server, incarnation]) => ({ server, incarnation }));
  }

  /**
   * Declares a server down that this one still hears (a split that is not a clique: it must
   * leave); false when it already was, in that life.
   */
  declareDown(server: string, incarnation: number): boolean {
    if (incarnation <= 0 || this.#declaredDown.get(server) === incarnation) return false;
    this.#declaredDown.set(server, incarnation);
    return true;
  }

  /** Builds the view from the latest facts; returns it with the server state changes since the last one. */
  update(input: ViewInput, nowMs: number): { view: ClusterView; changes: StateChange[] } {
    if (input.heard) this.#heard = input.heard;
    const heard = new Map(this.#heard.map((h) => [h.name, h]));
    const peers = new Map(input.peers.map((p) => [p.server, p]));
    const before = new Map((this.#last?.servers ?? []).map((s) => [s.name, s]));
    const changes: StateChange[] = [];
    this.#startupDone ||= input.startupDone || input.peers.some((p) => p.reported?.startupDone === true);

    const servers = input.servers.map((name): ServerView => {
      const local = name === input.self;
      let state: string;
      let incarnation: number;
      let groups: PlacedGroup[];
      if (local) {
        state = input.selfState;
        incarnation = input.selfIncarnation;
        groups = input.localGroups;
      } else {
        const h = heard.get(name);
        const p = peers.get(name);
        incarnation = h?.incarnation ?? 0;
        const reported = p?.reported;
        const current = reported !== undefined && isCurrent(reported, incarnation);
        // Not heard here but by a server that is: cut off from this one only (a split that is not
        // a clique), still holding its groups.
        if (h?.state !== 'online') state = heardElsewhere(name, heard, input.peers) ? 'unreachable' : 'offline';
        else state = current ? reported.state : 'unknown';
        // A server that went down keeps its last report: the coordinator fails those groups over.
        groups = current || h?.state !== 'online' ? (reported?.groups ?? []) : [];
        this.#noteDown(name, state, incarnation, before.get(name)?.state);
      }
      const previous = before.get(name);
      const sinceMs = previous && previous.state === state ? previous.sinceMs : nowMs;
      if (previous && previous.state !== state) changes.push({ server: name, from: previous.state, to: state });
      return { name, state, incarnation, sinceMs, groups, local };
    });
    const selfState = input.selfState;
    const coordinator = GONE.has(selfState) || input.undecided ? '' : (servers.find((s) => s.state === 'online')?.name ?? '');
    const view: ClusterView = { servers, coordinator, startupDone: this.#startupDone };
    this.#last = view;
    return { view, changes };
  }

  /** Remembers a server this one saw go down, with its incarnation; forgets it when it comes back as a new one. */
  #noteDown(name: string, state: string, incarnation: number, before: string | undefined): void {
    const declared = this.#declaredDown.get(name);
    if (state === 'offline') {
      if (before !== undefined && before !== 'offline' && incarnation > 0) this.#declaredDown.set(name, incarnation);
    } else if (declared !== undefined && incarnation > 0 && incarnation !== declared) {
      this.#declaredDown.delete(name);
    }
  }
}

/** Whether a peer's membership says it declared this server, in its present incarnation, down. */
export function declaredDownBy(m: { down: { server: string; incarnation: number }[] }, self: string, incarnation: number): boolean {
  return incarnation > 0 && m.down.some((d) => d.server === self && d.incarnation === incarnation);
}

/** Whether two views differ in anything the resource controller acts on. */
export function sameView(a: ClusterView | undefined, b: ClusterView): boolean {
  return a !== undefined && JSON.stringify(a) === JSON.stringify(b);
}
