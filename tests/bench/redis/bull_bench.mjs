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
  let lost = 0;
  let next = performance.now();
  for (let i = 0; i < n; i++) {
    while (performance.now() < next) {}
    next += 1000 / rate;
    const t0 = performance.now();
    // Kept until waited on: a removed job cannot be waited for.
    const job = await q.add("add", { x: i, y: i }, { removeOnComplete: 1000 });
    // Bounded: QueueEvents can miss a completion (the wait then never
    // ends); such a job is left out of the percentiles and counted.
    try {
      await job.waitUntilFinished(ev, 10000);
    } catch {
      lost++;
      continue;
    }
    rtt.push((performance.now() - t0) * 1000);
  }
  rtt.sort((a, b) => a - b);
  if (lost) console.error(`bullmq: ${lost} of ${n} completions not seen in 10 s`);
  const m = rtt.length;
  console.log(Math.round(rtt[m >> 1]), Math.round(rtt[Math.floor(m * 99 / 100)]));
}
await ev.close(); await q.close();
process.exit(0);
