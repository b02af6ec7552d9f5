// Records which sources a build came from (jobline/api/dashboard_dist/build-info.json), so a
// Python test can tell when the committed build is older than frontend/ (tests/test_dashboard.py
// computes the same hash).
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, sep } from "node:path";

export const ROOTS = ["src", "public", "index.html", "package-lock.json", "vite.config.ts", "tsconfig.json"];

function walk(p) {
  return statSync(p).isDirectory() ? readdirSync(p).flatMap((n) => walk(join(p, n))) : [p];
}

export function sourceHash() {
  const files = ROOTS.flatMap(walk).map((f) => f.split(sep).join("/")).sort();
  const h = createHash("sha256");
  for (const f of files) {
    h.update(f + "\0");
    h.update(readFileSync(f));
    h.update("\0");
  }
  return h.digest("hex");
}

writeFileSync("../jobline/api/dashboard_dist/build-info.json", JSON.stringify({ sourceHash: sourceHash() }) + "\n");
