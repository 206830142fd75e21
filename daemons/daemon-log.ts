import { pino, type DestinationStream, type Logger } from 'pino';

/** The levels `--log-level` takes: pino's, quietest last. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

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
export function daemonLogger(options: DaemonLogOptions): Logger {
  if (!(LOG_LEVELS as readonly string[]).includes(options.level)) throw new Error(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  const destination: DestinationStream =
    options.file !== undefined ? pino.destination({ dest: options.file, append: true, mkdir: true, sync: true })
    : !options.json && process.stderr.isTTY ? { write: (line: string) => void process.stderr.write(readable(line)) }
    : pino.destination({ fd: 2, sync: true });
  return pino({ level: options.level, base: { pid: process.pid } }, destination);
}

/** A JSON log line as `[level] message {other fields}`, for a person at a terminal. */
function readable(line: string): string {
  const { level, msg, time: _time, pid: _pid, ...fields } = JSON.parse(line) as { level: number; msg?: string; time?: number; pid?: number };
  const name = pino.levels.labels[level] ?? String(level);
  return `[${name}] ${msg ?? ''}${Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : ''}\n`;
}
