import { pino, type DestinationStream, type Logger } from 'pino';

/** The levels `--log-level` takes: pino's, quietest last. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** Recent log lines a daemon keeps for `zerocos logs`. */
const RING_LINES = 1000;

export interface DaemonLogOptions {
  /** One of {@link LOG_LEVELS}. */
  level: string;
  /** Append JSON lines here instead of stderr. @default stderr */
  file?: string;
  /** JSON lines even on a terminal. @default false: JSON unless stderr is a terminal */
  json?: boolean;
}

/**
 * The daemon's log (pino): one JSON object per line on stderr or in `file`, written
 * synchronously (a daemon logs rarely: peers up and down, crashes, refused handshakes, so a log
 * line is never lost to an exit). On a terminal, unless `json`, the same lines read as
 * `[info] message {fields}`. stdout is never used: it carries the daemon's machine-readable lines.
 * @throws Error for an unknown level, or the file's open error
 */
export function daemonLogger(options: DaemonLogOptions): { logger: Logger; recent: LogRing } {
  if (!(LOG_LEVELS as readonly string[]).includes(options.level)) throw new Error(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  const destination: DestinationStream =
    options.file !== undefined ? pino.destination({ dest: options.file, append: true, mkdir: true, sync: true })
    : !options.json && process.stderr.isTTY ? { write: (line: string) => void process.stderr.write(readable(line)) }
    : pino.destination({ fd: 2, sync: true });
  const recent = new LogRing(RING_LINES);
  const logger = pino({ level: options.level, base: { pid: process.pid } }, pino.multistream([{ stream: destination, level: 'trace' }, { stream: recent, level: 'trace' }]));
  return { logger, recent };
}

/**
 * The last lines of the log, numbered, for `zerocos logs` (the daemon's `['logs', after]`
 * answer): a bounded array, the oldest dropped.
 */
export class LogRing {
  private readonly lines: string[] = [];
  /** The number of the next line written (the first is 1). */
  private next = 1;

  constructor(private readonly capacity: number) {}

  write(line: string): void {
    this.lines.push(line.endsWith('\n') ? line.slice(0, -1) : line);
    this.next++;
    if (this.lines.length > this.capacity) this.lines.shift();
  }

  /** The lines numbered above `after` still kept, and the number to ask after next time. */
  since(after: number): { lines: string[]; next: number } {
    const first = this.next - this.lines.length;
    const from = Math.max(0, Math.floor(after) + 1 - first);
    return { lines: this.lines.slice(from), next: this.next - 1 };
  }
}

/** A JSON log line as `[level] message {other fields}` and a newline, for a person at a terminal. */
export function readable(line: string): string {
  const { level, msg, time: _time, pid: _pid, ...fields } = JSON.parse(line) as { level: number; msg?: string; time?: number; pid?: number };
  const name = pino.levels.labels[level] ?? String(level);
  return `[${name}] ${msg ?? ''}${Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : ''}\n`;
}
