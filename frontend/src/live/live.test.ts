import { Coalescer } from "./coalesce";
import { statusAfter } from "./status";

describe("Coalescer", () => {
  it("hands a flood over once per frame, newest kept when over the cap", () => {
    const frames: FrameRequestCallback[] = [];
    vi.stubGlobal("requestAnimationFrame", (cb: FrameRequestCallback) => frames.push(cb));
    const batches: number[][] = [];
    const c = new Coalescer<number>((items) => batches.push(items), 0, 5_000);
    for (let i = 0; i < 10_000; i++) c.push(i);
    expect(frames).toHaveLength(1); // one frame scheduled for 10,000 events
    frames.shift()!(0);
    expect(batches).toHaveLength(1);
    expect(batches[0]).toHaveLength(5_000);
    expect(batches[0][0]).toBe(5_000);
    expect(batches[0].at(-1)).toBe(9_999);
    c.push(1);
    expect(frames).toHaveLength(1); // the next event schedules the next frame
    c.dispose();
    vi.unstubAllGlobals();
  });
});

describe("statusAfter", () => {
  it("maps events to the job's new status", () => {
    expect(statusAfter("jobs.started", {})).toBe("PROCESSING");
    expect(statusAfter("jobs.completed", {})).toBe("COMPLETED");
    expect(statusAfter("jobs.dead_letter", {})).toBe("DEAD_LETTER");
    expect(statusAfter("jobs.submitted", { status: "scheduled" })).toBe("SCHEDULED");
    expect(statusAfter("jobs.retries", { retryAt: "x" })).toBe("PENDING");
    // a failed attempt alone does not say what happens next (retries/dead_letter follows)
    expect(statusAfter("jobs.failed", {})).toBeNull();
  });
});
