import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Job } from './job.js';

/**
 * The files running jobs send back (dispy's `dispy_send_file`), written to the cluster's files
 * directory as `<job id>-<name>` and added to the job's `files` once on disk. A write that fails
 * is not lost silently: it is noted, and the note goes into the job's stderr when it ends.
 */
export class ReturnedFiles {
  private readonly writes = new Map<number, Promise<unknown>[]>();
  private readonly failures = new Map<number, string[]>();

  constructor(private readonly dir: string) {}

  /** Writes `bytes`, sent back by `job` as `name` (only its base name is used: no path leaves the directory). */
  write(job: Job, name: string, bytes: Uint8Array): void {
    const base = basename(name) || 'file';
    const path = join(this.dir, `${job.id}-${base}`);
    const writing = mkdir(this.dir, { recursive: true })
      .then(() => writeFile(path, bytes))
      .then(() => void job.files.push(path))
      .catch((error: Error) => {
        const failures = this.failures.get(job.id) ?? [];
        failures.push(`[zerocos: could not write the file ${base} sent back: ${error.message}]`);
        this.failures.set(job.id, failures);
      });
    const writes = this.writes.get(job.id) ?? [];
    writes.push(writing);
    this.writes.set(job.id, writes);
  }

  /** Waits for job `id`'s writes and forgets them; returns the notes of those that failed. */
  async settle(id: number): Promise<string[] | undefined> {
    await Promise.all(this.writes.get(id) ?? []);
    this.writes.delete(id);
    const failures = this.failures.get(id);
    this.failures.delete(id);
    return failures;
  }
}
