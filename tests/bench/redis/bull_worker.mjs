// SPDX-License-Identifier: MIT
// The BullMQ side of make bench-redis: a worker running add.
import { Worker } from "bullmq";
const connection = { host: "127.0.0.1", port: Number(process.env.REDIS_PORT) };
const w = new Worker("bench", async (job) => job.data.x + job.data.y,
  { connection, concurrency: 64 });
process.on("SIGTERM", async () => { await w.close(); process.exit(0); });
