/**
 * Long catalog operations (volume delete, flatten, rollback) run as background jobs with
 * progress, polled through the API (GET /v1/jobs/:id). Jobs live in the memory of the node
 * that runs them (the authority's); a delete left half done by a restart is picked up again
 * from the volume's 'deleting' state.
 */
import { randomUUID } from 'node:crypto';

/** A job as the API shows it. */
export interface Job {
  id: string;
  kind: 'delete' | 'flatten' | 'rollback';
  /** What it works on, e.g. the volume name. */
  target: string;
  state: 'running' | 'succeeded' | 'failed';
  /** Units done and to do (extents). */
  progress: { done: number; total: number };
  startedAt: string;
  endedAt?: string;
  error?: string;
}

/** Progress callback of a job body. */
export type JobProgress = (done: number, total: number) => void;

/** Runs and remembers jobs (the newest 1000). */
export class JobTracker {
  private readonly jobs = new Map<string, Job>();

  /** Starts `body` as a job; returns the job record at once (it is updated in place). */
  start(kind: Job['kind'], target: string, body: (progress: JobProgress) => Promise<void>): Job {
    const job: Job = { id: randomUUID(), kind, target, state: 'running', progress: { done: 0, total: 0 }, startedAt: new Date().toISOString() };
    this.jobs.set(job.id, job);
    if (this.jobs.size > 1000) this.jobs.delete(this.jobs.keys().next().value!);
    void body((done, total) => {
      job.progress = { done, total };
    }).then(
      () => {
        job.state = 'succeeded';
        job.endedAt = new Date().toISOString();
      },
      (e: Error) => {
        job.state = 'failed';
        job.error = e.message;
        job.endedAt = new Date().toISOString();
      },
    );
    return job;
  }

  /** The running job of `kind` on `target`, if any. */
  running(kind: Job['kind'], target: string): Job | undefined {
    for (const j of this.jobs.values()) if (j.kind === kind && j.target === target && j.state === 'running') return j;
    return undefined;
  }

  /** Job `id`, if known. */
  get(id: string): Job | undefined {
    return this.jobs.get(id);
  }

  /** Every job known, newest last. */
  list(): Job[] {
    return [...this.jobs.values()];
  }
}
