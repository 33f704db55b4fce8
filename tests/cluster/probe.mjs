/**
 * A client probe for failover measurements, and the pure analysis of what it recorded.
 *
 * Run as a program INSIDE the client namespace (`startProbe` does that), it sends
 * `GET <url>` every `interval` ms on a fresh connection each time (no keep-alive: a connection to
 * a dead server must not hold later requests), each bounded by `timeout` ms, and appends one JSON
 * line per request to `out`:
 *   { seq, sentMs, answeredMs, answer }   the server's name (the body, trimmed)
 *   { seq, sentMs, endedMs, error }       refused, timed out, reset, ...
 * Requests overlap: a tick does not wait for the requests before it, so a server that stops
 * answering costs each request its own timeout and never delays the ticks after it (at most
 * timeout/interval requests are open at once). Times are epoch milliseconds with fractions
 * (performance.timeOrigin + performance.now()), comparable with the same clock in another process.
 * SIGTERM stops the ticks, lets the open requests end (each within its timeout) and exits 0.
 *
 *   node probe.mjs --url http://10.71.1.200:38080/ --out /tmp/x.jsonl [--interval 20] [--timeout 150]
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, realpathSync } from 'node:fs';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';

export const PROBE_INTERVAL_MS = 20;
export const PROBE_TIMEOUT_MS = 150;

/** Epoch milliseconds with sub-millisecond resolution, the probe's clock. */
export const nowMs = () => performance.timeOrigin + performance.now();

/**
 * @typedef {{ seq: number, sentMs: number, answeredMs: number, answer: string }} Answer
 * @typedef {{ seq: number, sentMs: number, endedMs: number, error: string }} Failure
 * @typedef {Answer | Failure} ProbeRecord
 * @typedef {{ fromMs: number, toMs: number, servers: string[], reason: string }} DoubleAnswerWindow
 */

/** @param {ProbeRecord} r @returns {r is Answer} */
const isAnswer = (r) => typeof r.answer === 'string';

/**
 * The first answer from a server other than the cut one after the cut (undefined when none).
 * @param {ProbeRecord[]} records
 * @param {{ cutServer: string, cutMs: number }} cut
 * @returns {Answer | undefined}
 */
export function firstAnswerFromOther(records, { cutServer, cutMs }) {
  return records
    .filter(isAnswer)
    .filter((r) => r.answer !== cutServer && r.answeredMs >= cutMs)
    .sort((a, b) => a.answeredMs - b.answeredMs)[0];
}

/**
 * Where more than one server held the address, as the client saw it: answers from two different
 * servers less than `tickMs` apart (a sliding window, so no tick boundary hides a pair), and
 * answers from the cut server once the cut is complete (`cutDoneMs`: its links are down by then;
 * an answer in flight while the cut was running is not counted). Overlapping or touching
 * (within `tickMs`) windows are merged.
 * Without a cut server, only answers from two servers within a tick count.
 * @param {ProbeRecord[]} records
 * @param {{ cutServer?: string, cutDoneMs?: number, tickMs?: number }} [opts]
 * @returns {DoubleAnswerWindow[]}
 */
export function doubleAnswerWindows(records, { cutServer, cutDoneMs = Infinity, tickMs = PROBE_INTERVAL_MS } = {}) {
  const answers = records.filter(isAnswer).sort((a, b) => a.answeredMs - b.answeredMs);
  /** @type {DoubleAnswerWindow[]} */
  const found = [];
  answers.forEach((r, i) => {
    const prev = answers[i - 1];
    if (prev && prev.answer !== r.answer && r.answeredMs - prev.answeredMs < tickMs) {
      found.push({
        fromMs: prev.answeredMs,
        toMs: r.answeredMs,
        servers: [prev.answer, r.answer],
        reason: `two servers within ${tickMs} ms`,
      });
    }
    if (r.answer === cutServer && r.answeredMs > cutDoneMs) {
      found.push({ fromMs: r.answeredMs, toMs: r.answeredMs, servers: [r.answer], reason: 'the cut server answered after the cut' });
    }
  });
  found.sort((a, b) => a.fromMs - b.fromMs);
  /** @type {DoubleAnswerWindow[]} */
  const merged = [];
  for (const w of found) {
    const last = merged.at(-1);
    if (last && w.fromMs - last.toMs <= tickMs) {
      last.toMs = Math.max(last.toMs, w.toMs);
      last.servers = [...new Set([...last.servers, ...w.servers])].sort();
      if (!last.reason.includes(w.reason)) last.reason += `; ${w.reason}`;
    } else merged.push({ ...w, servers: [...new Set(w.servers)].sort() });
  }
  return merged;
}

/**
 * Whether the address went from one server to the other cleanly, as the client saw it since
 * `sinceMs`: every answer of `from` came before the first answer of `to`, and `to` answered.
 * @param {ProbeRecord[]} records
 * @param {{ from: string, to: string, sinceMs: number }} move
 * @returns {{ clean: boolean, lastFromMs: number | undefined, firstToMs: number | undefined }} times relative to sinceMs
 */
export function handover(records, { from, to, sinceMs }) {
  const since = records.filter(isAnswer).filter((r) => r.answeredMs >= sinceMs);
  const last = Math.max(-Infinity, ...since.filter((r) => r.answer === from).map((r) => r.answeredMs));
  const first = Math.min(Infinity, ...since.filter((r) => r.answer === to).map((r) => r.answeredMs));
  return {
    clean: Number.isFinite(first) && last < first,
    lastFromMs: Number.isFinite(last) ? last - sinceMs : undefined,
    firstToMs: Number.isFinite(first) ? first - sinceMs : undefined,
  };
}

/**
 * What one failover looked like to the client.
 * @param {ProbeRecord[]} records
 * @param {{ cutServer: string, cutMs: number, cutDoneMs?: number, tickMs?: number }} cut
 *   cutMs: when the cut began (failover time counts from here); cutDoneMs: when it was complete
 */
export function analyseFailover(records, { cutServer, cutMs, cutDoneMs = cutMs, tickMs = PROBE_INTERVAL_MS }) {
  const first = firstAnswerFromOther(records, { cutServer, cutMs });
  const after = records.filter((r) => r.sentMs >= cutMs);
  return {
    /** from the cut to the first answer of another server; undefined when none answered */
    failoverMs: first ? first.answeredMs - cutMs : undefined,
    newServer: first?.answer,
    windows: doubleAnswerWindows(records, { cutServer, cutDoneMs, tickMs }),
    /** requests sent after the cut that got no answer */
    failedAfterCut: after.filter((r) => !isAnswer(r)).length,
    sentAfterCut: after.length,
  };
}

/** @param {string} text JSON lines @returns {ProbeRecord[]} (a last, half-written line is skipped) */
export function parseRecords(text) {
  return text
    .split('\n')
    .filter(Boolean)
    .flatMap((line) => {
      try {
        return [JSON.parse(line)];
      } catch {
        return [];
      }
    });
}

/** @param {string} file @returns {ProbeRecord[]} */
export function readRecords(file) {
  return existsSync(file) ? parseRecords(readFileSync(file, 'utf8')) : [];
}

/**
 * Starts the probe inside a network namespace; `stop()` ends it (SIGTERM to its pid, SIGKILL
 * if it has not ended within 2 s) and resolves once it has exited. `ip netns exec` executes the
 * program in its own place, so the pid is the probe's.
 * @param {string} ns
 * @param {{ url: string, out: string, intervalMs?: number, timeoutMs?: number }} opts
 */
export function startProbe(ns, { url, out, intervalMs = PROBE_INTERVAL_MS, timeoutMs = PROBE_TIMEOUT_MS }) {
  const args = [
    fileURLToPath(import.meta.url),
    '--url',
    url,
    '--out',
    out,
    '--interval',
    String(intervalMs),
    '--timeout',
    String(timeoutMs),
  ];
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let stopping;
  return {
    pid: child.pid,
    exited,
    stderr: () => stderr,
    /** @returns {Promise<ProbeRecord[]>} everything it recorded */
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
          await exited;
          clearTimeout(timer);
        }
        return readRecords(out);
      })();
      return stopping;
    },
  };
}

/** The probe itself: runs until SIGTERM. */
function probe({ url, out, intervalMs, timeoutMs }) {
  const file = createWriteStream(out, { flags: 'a' });
  const target = new URL(url);
  let open = 0;
  let running = true;
  let seq = 0;
  const write = (record) => file.write(`${JSON.stringify(record)}\n`);
  const send = () => {
    const record = { seq: seq++, sentMs: nowMs() };
    open++;
    let ended = false;
    const end = (extra) => {
      if (ended) return;
      ended = true;
      open--;
      write({ ...record, ...extra });
      if (!running && open === 0) file.end(() => process.exit(0));
    };
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        agent: false,
        headers: { connection: 'close' },
        signal: AbortSignal.timeout(timeoutMs),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () =>
          end(
            res.statusCode === 200 ? { answeredMs: nowMs(), answer: body.trim() } : { endedMs: nowMs(), error: `HTTP ${res.statusCode}` },
          ),
        );
        res.on('error', (err) => end({ endedMs: nowMs(), error: err.name === 'AbortError' ? 'timeout' : (err.code ?? err.message) }));
      },
    );
    req.on('error', (err) => end({ endedMs: nowMs(), error: err.name === 'AbortError' ? 'timeout' : (err.code ?? err.message) }));
    req.end();
  };
  // Ticks at fixed times from the start: a late timer does not shift the ticks after it.
  const start = nowMs();
  let tick = 0;
  let timer;
  const schedule = () => {
    tick++;
    timer = setTimeout(
      () => {
        send();
        schedule();
      },
      Math.max(0, start + tick * intervalMs - nowMs()),
    );
  };
  send();
  schedule();
  process.once('SIGTERM', () => {
    running = false;
    clearTimeout(timer);
    if (open === 0) file.end(() => process.exit(0));
  });
}

/** @param {string[]} argv */
function parseArgs(argv) {
  const opts = { url: '', out: '', intervalMs: PROBE_INTERVAL_MS, timeoutMs: PROBE_TIMEOUT_MS };
  for (let i = 0; i < argv.length; i += 2) {
    const [key, value] = [argv[i], argv[i + 1] ?? ''];
    if (key === '--url') opts.url = value;
    else if (key === '--out') opts.out = value;
    else if (key === '--interval') opts.intervalMs = Number(value);
    else if (key === '--timeout') opts.timeoutMs = Number(value);
    else throw new Error(`probe: unknown option ${key}`);
  }
  if (!opts.url || !opts.out || !(opts.intervalMs > 0) || !(opts.timeoutMs > 0)) {
    throw new Error('usage: node probe.mjs --url URL --out FILE [--interval MS] [--timeout MS]');
  }
  return opts;
}

// A program when run, a library when imported.
if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  probe(parseArgs(process.argv.slice(2)));
}
