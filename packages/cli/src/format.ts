/**
 * What `tandem` prints: pure functions from replies to text, so the layout is tested without a
 * cluster. Tables are plain text with columns padded to their widest cell.
 */
import { v1, type tandem } from '@tandem/protocol';

type ClusterStatus = tandem.v1.ClusterStatus.$Properties;
type ServerStatus = tandem.v1.ServerStatus.$Properties;
type GroupStatus = tandem.v1.GroupStatus.$Properties;
type MonitorStatus = tandem.v1.MonitorStatus.$Properties;
type DaemonStatus = tandem.v1.DaemonStatus.$Properties;
type Alert = tandem.v1.Alert.$Properties;
type ConfigReply = tandem.v1.ConfigReply.$Properties;

const INDENT = '  ';
const NONE = '-';

/** Rows of cells under a header, each column as wide as its widest cell; trailing blanks trimmed. */
export function renderTable(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/** A titled section: the table indented under its title, or "(none)". */
function section(title: string, header: string[], rows: string[][]): string[] {
  if (rows.length === 0) return [title, `${INDENT}(none)`];
  return [title, ...renderTable(header, rows).map((l) => INDENT + l)];
}

const orNone = (text: string | null | undefined): string => (text ? text : NONE);
const pid = (p: number | null | undefined): string => (p ? String(p) : NONE);

export function formatPaths(server: ServerStatus): string {
  const paths = server.paths ?? [];
  return paths.length === 0 ? NONE : paths.map((p) => `${p.address ?? '?'} ${p.state ?? '?'}`).join(', ');
}

export function serverRows(servers: ServerStatus[]): string[][] {
  return servers.map((s) => [`${s.name ?? ''}${s.local ? ' (local)' : ''}`, orNone(s.state), formatPaths(s)]);
}

/** One row per group, followed by one indented row per resource. */
export function groupRows(groups: GroupStatus[]): string[][] {
  const rows: string[][] = [];
  for (const g of groups) {
    rows.push([g.name ?? '', orNone(g.state), orNone(g.server), '', '', g.detail ?? '']);
    for (const r of g.resources ?? []) {
      const alive = r.pid ? (r.alive ? 'yes' : 'no') : NONE;
      rows.push([`${INDENT}${r.name ?? ''}`, orNone(r.state), '', pid(r.pid), alive, r.detail ?? '']);
    }
  }
  return rows;
}

export function monitorRows(monitors: MonitorStatus[]): string[][] {
  return monitors.map((m) => [
    m.name ?? '',
    orNone(m.type),
    orNone(m.state),
    orNone(m.target),
    String(m.consecutiveFailures ?? 0),
    String(m.reactivations ?? 0),
    orNone(m.lastResult),
  ]);
}

export function daemonRows(daemons: DaemonStatus[]): string[][] {
  return daemons.map((d) => [d.name ?? '', pid(d.pid), d.rssKb ? (d.rssKb / 1024).toFixed(1) : NONE, orNone(d.state)]);
}

/** `tandem status` as a readable page. */
export function formatStatus(status: ClusterStatus): string {
  const lines = [
    `cluster ${orNone(status.cluster)}  server ${orNone(status.server)}  state ${orNone(status.state)}`,
    '',
    ...section('SERVERS', ['NAME', 'STATE', 'PATHS'], serverRows(status.servers ?? [])),
    '',
    ...section('GROUPS', ['NAME', 'STATE', 'SERVER', 'PID', 'ALIVE', 'DETAIL'], groupRows(status.groups ?? [])),
    '',
    ...section(
      'MONITORS',
      ['NAME', 'TYPE', 'STATE', 'TARGET', 'FAILURES', 'REACTIVATIONS', 'LAST RESULT'],
      monitorRows(status.monitors ?? []),
    ),
    '',
    ...section('DAEMONS', ['NAME', 'PID', 'RSS MB', 'STATE'], daemonRows(status.daemons ?? [])),
  ];
  if (status.mirrorSummary) lines.push('', `MIRRORS  ${status.mirrorSummary}`);
  return `${lines.join('\n')}\n`;
}

/** `2024-01-02 03:04:05Z` */
export function formatTime(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

/** One line per alert, oldest first: time, id, severity, server/daemon, message, details. */
export function formatAlerts(alerts: Alert[]): string {
  if (alerts.length === 0) return '(no events)\n';
  const rows = alerts.map((a) => {
    const details = Object.entries(a.details ?? {})
      .filter(([, v]) => v !== '')
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    return [
      formatTime(Number(a.timeMs ?? 0)),
      a.id ?? '',
      a.severity ?? '',
      `${a.server ?? ''}/${a.daemon ?? ''}`,
      details ? `${a.message ?? ''}  (${details})` : (a.message ?? ''),
    ];
  });
  return `${renderTable(['TIME', 'ID', 'SEVERITY', 'WHERE', 'MESSAGE'], rows).join('\n')}\n`;
}

/** The report of a failed validation: a headline and one problem per line. */
export function formatProblems(file: string, problems: string[]): string {
  const noun = problems.length === 1 ? 'problem' : 'problems';
  return [`configuration ${file} is invalid (${problems.length} ${noun}):`, ...problems.map((p) => `${INDENT}${p}`)].join('\n') + '\n';
}

/**
 * What the operator does after `tandem config apply`, by change level (docs/configuration.md,
 * "Changing the configuration of a running cluster"): the daemons read the file when they start.
 */
export const NEXT_STEP: Record<string, string> = {
  none: 'next: nothing to restart (the running configuration is the same)',
  'restart-daemons':
    'next: restart Tandem on one server at a time: move its groups away (tandem group move), run pm2 delete ecosystem.config.js then pm2 start ecosystem.config.js there, and wait until tandem status shows it online',
  'restart-cluster':
    'next: restart the whole cluster: tandem cluster stop and pm2 delete ecosystem.config.js on every server, then pm2 start ecosystem.config.js on every server (the groups stop meanwhile)',
};

/** `tandem config diff`: one line per changed setting, then the level the change needs. */
export function formatConfigDiff(reply: ConfigReply): string {
  const changes = reply.changes ?? [];
  return [...(changes.length > 0 ? changes : ['(no change)']), `level: ${orNone(reply.level)}`].join('\n') + '\n';
}

/** `tandem config apply`: the diff, the generation and where it is installed, then what to do next. */
export function formatConfigApply(reply: ConfigReply): string {
  const servers = reply.servers ?? [];
  const installed =
    servers.length > 0 ? `generation ${Number(reply.generation ?? 0)} installed on ${servers.join(', ')}` : 'installed on no server';
  const next = NEXT_STEP[reply.level ?? ''] ?? 'next: see "Changing the configuration of a running cluster" in docs/configuration.md';
  return `${formatConfigDiff(reply)}${installed}\n${next}\n`;
}

/** The ConfigReply of diff or apply for --json, every field present. */
export function configReplyToJson(reply: ConfigReply): Record<string, unknown> {
  return v1.ConfigReply.toObject(v1.ConfigReply.fromObject(reply), { defaults: true, arrays: true });
}

/** JSON text for --json. */
export function toJsonText(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
