/** Sleeps that end early when woken: a worker idles until its timeout or until there is work (or a stop). */
export class Naps {
  private readonly wakers = new Set<() => void>();

  /** Waits `ms`, or until wake() is called. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }

  /** Ends every sleep in progress now. */
  wake(): void {
    for (const wake of this.wakers) wake();
  }
}
