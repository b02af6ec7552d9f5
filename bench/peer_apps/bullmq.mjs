// BullMQ side of the peer benchmark (run from bench/peer_apps with PEER_NODE_DIR=bench/.peers/node).
//   node bullmq.mjs enqueue N [now]   addBulk N no-op jobs (with "now": stamped with the add time)
//   node bullmq.mjs work              a worker, concurrency 50 (documented fast setting for I/O-free jobs)
import { createRequire } from "module";
const require = createRequire(process.env.PEER_NODE_DIR + "/package.json");
const { Queue, Worker } = require("bullmq");
const IORedis = require("ioredis");

const url = process.env.PEER_REDIS_URL;
const connection = new IORedis(url, { maxRetriesPerRequest: null });
const now = () => (performance.timeOrigin + performance.now()) / 1000;
const [mode, arg, stamp] = process.argv.slice(2);

if (mode === "enqueue") {
  const q = new Queue("peer", { connection });
  const n = Number(arg);
  await q.waitUntilReady();
  const t0 = now();
  for (let s = 0; s < n; s += 1000) {
    const jobs = [];
    for (let i = s; i < Math.min(n, s + 1000); i++) {
      jobs.push({ name: "noop", data: { t: stamp === "now" ? now() : null },
                  opts: { removeOnComplete: true, removeOnFail: true } });
    }
    await q.addBulk(jobs);
  }
  console.log(JSON.stringify({ s: now() - t0 }));
  await q.close();
  await connection.quit();
} else {
  const w = new Worker("peer", async (job) => {
    if (job.data.t != null) await connection.rpush("pb:lat", now() - job.data.t);
    else await connection.incr("pb:done");
  }, { connection: new IORedis(url, { maxRetriesPerRequest: null }), concurrency: 50 });
  process.on("SIGTERM", async () => { await w.close(); process.exit(0); });
}
