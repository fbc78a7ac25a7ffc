// SPDX-License-Identifier: MIT
// bull_bench.mjs results N | latency N RATE
import { Queue, QueueEvents } from "bullmq";
const connection = { host: "127.0.0.1", port: Number(process.env.REDIS_PORT) };
const [mode, nArg, rateArg] = process.argv.slice(2);
const n = Number(nArg);
const q = new Queue("bench", { connection });
const ev = new QueueEvents("bench", { connection });
await ev.waitUntilReady();
const opts = { removeOnComplete: true, removeOnFail: true };
if (mode === "results") {
  let done = 0;
  const all = new Promise((res) => ev.on("completed", () => { if (++done === n) res(); }));
  const t0 = performance.now();
  for (let b = 0; b < n; b += 1000) {
    const k = Math.min(1000, n - b), jobs = [];
    for (let i = 0; i < k; i++) jobs.push({ name: "add", data: { x: b + i, y: b + i }, opts });
    await q.addBulk(jobs);
  }
  await all;
  console.log(Math.round(n / ((performance.now() - t0) / 1000)));
} else {
  const rate = Number(rateArg), rtt = [];
  let next = performance.now();
  for (let i = 0; i < n; i++) {
    while (performance.now() < next) {}
    next += 1000 / rate;
    const t0 = performance.now();
    // Kept until waited on: a removed job cannot be waited for.
    const job = await q.add("add", { x: i, y: i }, { removeOnComplete: 1000 });
    await job.waitUntilFinished(ev);
    rtt.push((performance.now() - t0) * 1000);
  }
  rtt.sort((a, b) => a - b);
  console.log(Math.round(rtt[n >> 1]), Math.round(rtt[Math.floor(n * 99 / 100)]));
}
await ev.close(); await q.close();
process.exit(0);
