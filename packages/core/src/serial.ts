/**
 * Runs work one piece after another: each starts once the one before has settled, and a failure
 * is its caller's, never the queue's (the next piece runs anyway).
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(work);
    this.#tail = run.catch(() => undefined);
    return run;
  }
}
