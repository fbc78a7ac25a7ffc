# SPDX-License-Identifier: MIT
# The Celery side of make bench-redis: the add task, Redis broker and
# result backend on the benchmark's redis-server (REDIS_PORT).
import os

from celery import Celery

_port = os.environ.get("REDIS_PORT", "6379")
app = Celery("celery_tasks", broker=f"redis://127.0.0.1:{_port}/1",
             backend=f"redis://127.0.0.1:{_port}/2")
app.conf.worker_prefetch_multiplier = 64
app.conf.result_expires = 600


@app.task
def add(x, y):
    return x + y
