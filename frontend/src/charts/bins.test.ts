import { describe, expect, it } from "vitest";
import { powerOfTwoBins } from "./bins";

describe("powerOfTwoBins", () => {
  it("merges fine buckets into power-of-two bins by their lower bound, keeping every count", () => {
    const got = powerOfTwoBins([
      { lowerMs: 0, upperMs: 1, count: 2 },
      { lowerMs: 100, upperMs: 104, count: 3 },
      { lowerMs: 120, upperMs: 124, count: 4 },
      { lowerMs: 130, upperMs: 135, count: 5 },
      { lowerMs: 2899, upperMs: 3014, count: 1 },
    ]);
    expect(got).toEqual([
      { lowerMs: 0, upperMs: 1, count: 2 },
      { lowerMs: 64, upperMs: 128, count: 7 },
      { lowerMs: 128, upperMs: 256, count: 5 },
      { lowerMs: 2048, upperMs: 4096, count: 1 },
    ]);
  });
  it("returns nothing for nothing", () => {
    expect(powerOfTwoBins([])).toEqual([]);
  });
});
