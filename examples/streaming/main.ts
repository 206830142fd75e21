/**
 * Streaming: a live stream of sensor readings through a pipeline on the cluster, aggregated in
 * sliding windows of event time.
 *
 *   node dist/examples/streaming/main.js                          (starts a local cluster of 2 daemons)
 *   node dist/examples/streaming/main.js --events 20000           (a shorter stream; default 200 000)
 *   node dist/examples/streaming/main.js --peers 127.0.0.1:9740   (joins running daemons instead)
 *
 * A seeded generator plays 4 sensors sampling at 2.5 kHz each (10 000 readings per second of
 * event time), as CSV lines `sensor,timestamp µs,raw ADC value`, as fast as the pipeline takes
 * them: credits pause the generator when the stages fall behind. Two stages:
 *   parse   (1 instance): CSV → {sensor, t, celsius}, calibrated with a per-sensor gain and offset;
 *   windows (2 instances, keyBy sensor): count, average, min and max per sensor over windows of
 *           1 s of event time sliding every 250 ms, each emitted once the sensor's readings have
 *           passed its end (and the rest by `flush` at the end of the stream).
 * Each window is printed once all sensors' results for it have arrived. At the end the results
 * are checked against the same windows computed here from the same readings, and the windows
 * of each of the 4 phases (start mod 1 s), which tile event time, must count every reading once.
 * Exits 1 on a wrong result.
 */
import { parseArgs } from 'node:util';
import { init, pipeline, shutdown, stage } from 'zerocos';

const usage = 'usage: main.js [--events N] [--peers host:port,...]';
let peers: string[] = [];
let events = 200_000;
try {
  const { values } = parseArgs({ options: { peers: { type: 'string' }, events: { type: 'string' } }, strict: true });
  peers = values.peers ? values.peers.split(',').filter(Boolean) : [];
  if (values.events !== undefined) {
    events = Number(values.events);
    if (!Number.isInteger(events) || events <= 0) throw new Error(`--events takes a positive whole number, not ${values.events}`);
  }
} catch (error) {
  console.error(`${(error as Error).message}\n${usage}`);
  process.exit(2);
}

const SENSORS = ['s0', 's1', 's2', 's3'];
const WINDOW_US = 1_000_000;
const SLIDE_US = 250_000;
/** Event time of the first reading: 2024-01-01T00:00:00Z, in µs. */
const EPOCH_US = Date.UTC(2024, 0, 1) * 1000;

/**
 * The sensors' readings: `count` CSV lines from a seeded generator (mulberry32), so every run
 * sees the same stream. Each sensor's temperature wanders around its own level; a reading
 * reports it as a 12-bit ADC value through the sensor's (unknown to the source) calibration.
 */
function* readings(count: number, seed = 42): Generator<string> {
  let state = seed >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const base = SENSORS.map((_, i) => 18 + 2 * i);
  const level = [...base];
  let t = EPOCH_US;
  for (let i = 0; i < count; i++) {
    // 100 µs between readings on average, from whichever sensor reports next.
    t += Math.floor(random() * 200);
    const s = Math.floor(random() * SENSORS.length);
    level[s] = level[s]! + (base[s]! - level[s]!) * 0.002 + (random() - 0.5) * 0.05;
    const celsius = level[s]! + (random() - 0.5) * 2;
    const raw = Math.max(0, Math.min(4095, Math.round((celsius + 40) * 30 + s * 7)));
    yield `${SENSORS[s]},${t},${raw}`;
  }
}

interface Reading {
  sensor: string;
  t: number;
  celsius: number;
}

interface WindowResult {
  sensor: string;
  /** Start of the window, µs of event time: it covers [start, start + 1 s). */
  start: number;
  count: number;
  sum: number;
  min: number;
  max: number;
}

// Stage functions are shipped to the workers as source: self-contained, no free variables.

/** CSV line → calibrated reading (the enrichment: each sensor's gain and offset, known to this stage only). */
function parse(line: string): Reading {
  const calibration: Record<string, [gain: number, offset: number]> = {
    s0: [1 / 30, -40],
    s1: [1 / 30, -40 - 7 / 30],
    s2: [1 / 30, -40 - 14 / 30],
    s3: [1 / 30, -40 - 21 / 30],
  };
  const [sensor, t, raw] = line.split(',');
  const [gain, offset] = calibration[sensor!] ?? [1, 0];
  return { sensor: sensor!, t: Number(t), celsius: Number(raw) * gain + offset };
}

/** One windowing instance's state: per sensor, its open windows by start, oldest first. */
type WindowState = { open: Map<string, Map<number, WindowResult>> };

/**
 * Adds a reading to the 4 windows that contain it. A sensor's readings arrive in event-time
 * order (keyBy keeps per-key order), so a reading at `t` closes that sensor's windows that end
 * at or before `t`: they are emitted first.
 */
function addToWindows(r: Reading, emit: (w: WindowResult) => void, state: WindowState): void {
  const windowUs = 1_000_000;
  const slideUs = 250_000;
  let open = state.open.get(r.sensor);
  if (!open) state.open.set(r.sensor, (open = new Map()));
  for (const [start, w] of open) {
    if (start + windowUs > r.t) break;
    emit(w);
    open.delete(start);
  }
  const first = Math.floor((r.t - windowUs) / slideUs) + 1;
  for (let k = first; k * slideUs <= r.t; k++) {
    const start = k * slideUs;
    const w = open.get(start);
    if (w) {
      w.count++;
      w.sum += r.celsius;
      if (r.celsius < w.min) w.min = r.celsius;
      if (r.celsius > w.max) w.max = r.celsius;
    } else {
      open.set(start, { sensor: r.sensor, start, count: 1, sum: r.celsius, min: r.celsius, max: r.celsius });
    }
  }
}

/** At the end of the stream: the windows still open (those reaching past the last reading). */
function flushWindows(state: WindowState, emit: (w: WindowResult) => void): void {
  for (const open of state.open.values()) for (const w of open.values()) emit(w);
}

/** The same windows computed here, plainly: every reading added to each window that contains it. */
function localWindows(count: number): Map<string, WindowResult> {
  const windows = new Map<string, WindowResult>();
  for (const line of readings(count)) {
    const r = parse(line);
    for (let start = Math.floor(r.t / SLIDE_US) * SLIDE_US; start > r.t - WINDOW_US; start -= SLIDE_US) {
      const key = `${r.sensor}@${start}`;
      const w = windows.get(key) ?? { sensor: r.sensor, start, count: 0, sum: 0, min: Infinity, max: -Infinity };
      w.count++;
      w.sum += r.celsius;
      w.min = Math.min(w.min, r.celsius);
      w.max = Math.max(w.max, r.celsius);
      windows.set(key, w);
    }
  }
  return windows;
}

const seconds = (us: number) => ((us - EPOCH_US) / 1e6).toFixed(2);
const fmt = (x: number) => Math.round(x).toLocaleString('en-US');

/** One line per window: `[start, end) s` then, per sensor, `n avg [min, max]`. */
function printWindow(start: number, results: Map<string, WindowResult>): void {
  const cells = SENSORS.map((sensor) => {
    const w = results.get(sensor);
    return w ? `${sensor} ${String(w.count).padStart(4)} ${(w.sum / w.count).toFixed(2)} [${w.min.toFixed(2)}, ${w.max.toFixed(2)}]` : `${sensor} -`;
  });
  console.log(`[${seconds(start).padStart(6)}, ${seconds(start + WINDOW_US).padStart(6)}) s  ${cells.join('  ')}`);
}

const session = await init(peers.length > 0 ? { peers } : {});
let ok = true;
try {
  console.log(
    session.local
      ? `started a local cluster: ${session.local.daemons.length} daemons, ${session.runtime.workers().length} workers`
      : `joined ${peers.join(', ')}: ${session.runtime.workers().length} workers`,
  );
  console.log(`${fmt(events)} readings from ${SENSORS.length} sensors (${fmt(events / 10_000)} s of event time), windows of 1 s sliding every 250 ms`);
  console.log('window [start, end) s, then per sensor: readings, average °C [min, max]');

  let firstPull = 0;
  async function* timed(source: Iterable<string>): AsyncGenerator<string> {
    firstPull = performance.now();
    yield* source;
  }
  const stream = pipeline<WindowResult>(timed(readings(events)), [
    stage(parse),
    stage(addToWindows, { parallelism: 2, keyBy: (r: Reading) => r.sensor, init: (): WindowState => ({ open: new Map() }), flush: flushWindows }),
  ]);

  // Results arrive per sensor, from two instances: a window is printed once all sensors have it.
  const received = new Map<string, WindowResult>();
  const pending = new Map<number, Map<string, WindowResult>>();
  let duplicates = 0;
  for await (const w of stream) {
    const key = `${w.sensor}@${w.start}`;
    if (received.has(key)) duplicates++;
    received.set(key, w);
    const row = pending.get(w.start) ?? new Map<string, WindowResult>();
    pending.set(w.start, row.set(w.sensor, w));
    if (row.size === SENSORS.length) {
      printWindow(w.start, row);
      pending.delete(w.start);
    }
  }
  const elapsedS = (performance.now() - firstPull) / 1000;
  // Windows some sensor had no reading in (only possible at the very ends of a short stream).
  for (const [start, row] of [...pending].sort(([a], [b]) => a - b)) printWindow(start, row);

  const sources = stream.stats().source;
  console.log(
    `${fmt(events)} events in ${elapsedS.toFixed(2)} s: ${fmt(events / elapsedS)} events/s; ${received.size} windows ` +
      `(${new Set([...received.values()].map((w) => w.start)).size} starts × ${SENSORS.length} sensors); ` +
      `the source was paused ${fmt(sources.creditWaits)} times for credit, at most ${sources.maxInFlight} readings in flight`,
  );

  // Check 1: every window equals the one computed here (the sums add the same readings in the
  // same order, so they are equal to the last bit).
  const expected = localWindows(events);
  const wrong = [...expected].filter(([key, e]) => {
    const w = received.get(key);
    return !w || w.count !== e.count || w.sum !== e.sum || w.min !== e.min || w.max !== e.max;
  });
  const windowsOk = wrong.length === 0 && duplicates === 0 && received.size === expected.size;
  console.log(
    windowsOk
      ? `check: all ${expected.size} windows equal the local computation`
      : `check: WRONG: ${wrong.length} windows differ, ${duplicates} duplicates, ${received.size} received, ${expected.size} expected` +
          (wrong[0] ? ` (first: ${wrong[0][0]})` : ''),
  );
  ok &&= windowsOk;

  // Check 2: windows whose starts are the same mod 1 s tile event time, so each such phase
  // counts every reading exactly once.
  const phases = new Map<number, number>();
  for (const w of received.values()) {
    const phase = (((w.start % WINDOW_US) + WINDOW_US) % WINDOW_US) / 1000;
    phases.set(phase, (phases.get(phase) ?? 0) + w.count);
  }
  const totals = [...phases].sort(([a], [b]) => a - b);
  const countsOk = totals.length === WINDOW_US / SLIDE_US && totals.every(([, n]) => n === events);
  console.log(`check: per-window counts by phase ${totals.map(([phase, n]) => `+${phase} ms: ${fmt(n)}`).join(', ')} ${countsOk ? '=' : '≠'} ${fmt(events)} events`);
  ok &&= countsOk;
} finally {
  await shutdown();
}
console.log(ok ? 'all ok' : 'FAILED');
process.exitCode = ok ? 0 : 1;
