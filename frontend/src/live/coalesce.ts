/** Collects items pushed at any rate and hands them over at most once per animation frame
 * (or `minIntervalMs`), so 10,000 events/s become ~60 renders/s, never 10,000. */
export class Coalescer<T> {
  private buf: T[] = [];
  private scheduled = false;
  private last = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private raf: number | null = null;
  private readonly flush: (items: T[]) => void;
  private readonly minIntervalMs: number;
  private readonly maxBuffered: number;

  constructor(flush: (items: T[]) => void, minIntervalMs = 0, maxBuffered = 50_000) {
    this.flush = flush;
    this.minIntervalMs = minIntervalMs;
    this.maxBuffered = maxBuffered;
  }

  push(item: T): void {
    this.buf.push(item);
    // Under a flood keep the newest: the UI shows the present, not a backlog.
    if (this.buf.length > this.maxBuffered) this.buf.splice(0, this.buf.length - this.maxBuffered);
    if (this.scheduled) return;
    this.scheduled = true;
    const wait = Math.max(0, this.last + this.minIntervalMs - Date.now());
    const go = () => {
      if (typeof requestAnimationFrame === "function" && document.visibilityState !== "hidden") {
        this.raf = requestAnimationFrame(() => this.drain());
      } else {
        this.drain();
      }
    };
    if (wait > 0) this.timer = setTimeout(go, wait);
    else go();
  }

  private drain(): void {
    this.scheduled = false;
    this.timer = null;
    this.raf = null;
    this.last = Date.now();
    const items = this.buf;
    this.buf = [];
    if (items.length) this.flush(items);
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.raf !== null && typeof cancelAnimationFrame === "function") cancelAnimationFrame(this.raf);
    this.buf = [];
  }
}
