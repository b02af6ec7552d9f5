import { Coalescer } from "./coalesce";
import { statusAfter } from "./status";

describe("Coalescer", () => {
  it("hands a flood over once per frame, newest kept when over the cap", async () => {
    const frames: FrameRequestCallback[] = [];
    vi.stubGlobal("requestAnimationFrame", (cb: FrameRequestCallback) => frames.push(cb));
    let now = 1_000_000;
    vi.spyOn(Date, "now").mockImplementation(() => now);
    const batches: number[][] = [];
    const c = new Coalescer<number>((items) => batches.push(items), 0, 5_000);
    c.push(-1);
    await Promise.resolve();
    // leading edge: after a quiet frame, the first push goes out at the end of its task
    expect(batches).toEqual([[-1]]);
    expect(frames).toHaveLength(0);
    now += 5;
    for (let i = 0; i < 10_000; i++) c.push(i);
    await Promise.resolve();
    expect(frames).toHaveLength(1); // within the frame: one frame scheduled for 10,000 events
    expect(batches).toHaveLength(1);
    frames.shift()!(0);
    expect(batches).toHaveLength(2);
    expect(batches[1]).toHaveLength(5_000);
    expect(batches[1][0]).toBe(5_000);
    expect(batches[1].at(-1)).toBe(9_999);
    c.push(1);
    expect(frames).toHaveLength(1); // the next event schedules the next frame
    c.dispose();
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
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
