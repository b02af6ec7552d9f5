/** A frame at 60 Hz: pushes closer together than this share a render. */
const FRAME_MS = 16;

/** Collects items pushed at any rate and hands them over at most once per animation frame
 * (or `minIntervalMs`), so 10,000 events/s become ~60 renders/s, never 10,000.
 *
 * Leading edge: the first push after a quiet frame is handed over at the end of the current task
 * (a microtask: every item of the same message still goes in one batch) instead of waiting for
 * the next frame, so an idle page shows an update up to a frame sooner (the commit -> DOM budget,
 * bench/dashboard_latency.py). While pushes keep coming, they wait for the next frame. */
export class Coalescer<T> {
  private buf: T[] = [];
  private scheduled = false;
  private last = -Infinity;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private raf: number | null = null;
  private disposed = false;
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
    const now = Date.now();
    const wait = Math.max(0, this.last + this.minIntervalMs - now);
    if (wait === 0 && now - this.last >= FRAME_MS) {
      queueMicrotask(() => { if (!this.disposed) this.drain(); });
      return;
    }
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
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.raf !== null && typeof cancelAnimationFrame === "function") cancelAnimationFrame(this.raf);
    this.buf = [];
  }
}
