# SPDX-License-Identifier: MIT
# celery_bench.py results N | latency N RATE  (workers started by the script)
import sys
import time

from celery_tasks import add


def main():
    mode, n = sys.argv[1], int(sys.argv[2])
    if mode == "results":
        t0 = time.monotonic()
        rs = [add.delay(i, i) for i in range(n)]
        for i, r in enumerate(rs):
            assert r.get(timeout=600) == 2 * i
        print(round(n / (time.monotonic() - t0)))
    else:
        rate, rtt, nxt = float(sys.argv[3]), [], time.monotonic()
        for i in range(n):
            while time.monotonic() < nxt:
                pass
            nxt += 1.0 / rate
            t0 = time.monotonic()
            assert add.delay(i, i).get(timeout=600) == 2 * i
            rtt.append((time.monotonic() - t0) * 1e6)
        rtt.sort()
        print(round(rtt[n // 2]), round(rtt[n * 99 // 100]))


main()
