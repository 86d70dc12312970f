"""Time and memory of ``make_sleep_cohort`` for a Sleep-EDF-20-sized simulated cohort.

Generates 20 subjects x 2 nights x 960 epochs x 2 profiles (76 800 epoch-channels of
3000 samples, 0.92 GB of float32) with one thread and with two, each in a fresh process
(as a user would: the first touch of X's memory is part of the cost), side by side in one
run. Prints wall-clock and CPU seconds, the machine load and the peak resident memory of
each process next to the size of ``X``.

    python benchmarks/bench_make_sleep_cohort.py
"""

import json
import os
import resource
import subprocess
import sys
import time


def one(n_jobs):
    from skseqsleep.datasets import make_sleep_cohort

    make_sleep_cohort(1, 1, n_epochs=10, random_state=0)  # imports, first-call overheads
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    data = make_sleep_cohort(20, 2, ["C4-A1-like", "Fpz-Cz-like"], random_state=0,
                             n_jobs=n_jobs)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"n_jobs": n_jobs, "wall": wall, "cpu": cpu, "load": load,
                      "x_bytes": data.X.nbytes, "extra_rss": peak - base}))


def main() -> None:
    results = []
    for n_jobs in (None, 2, None, 2):
        out = subprocess.run([sys.executable, __file__, "--one", json.dumps(n_jobs)],
                             check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    print(f"cohort: 20 subjects x 2 nights x 960 epochs x 2 profiles; {os.cpu_count()} cores")
    for r in results:
        print(f"n_jobs={r['n_jobs']!s:4}  wall {r['wall']:6.2f} s  cpu {r['cpu']:6.2f} s  "
              f"load before {r['load']:4.1f}  X {r['x_bytes'] / 1e9:.2f} GB  "
              f"peak RSS growth {r['extra_rss'] / 1e9:.2f} GB "
              f"({r['extra_rss'] / r['x_bytes']:.2f} x X)")
    one_thread = min(r["wall"] for r in results if r["n_jobs"] is None)
    two = min(r["wall"] for r in results if r["n_jobs"] == 2)
    print(f"best wall: 1 thread {one_thread:.2f} s, 2 threads {two:.2f} s "
          f"(ratio {one_thread / two:.2f})")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        one(json.loads(sys.argv[2]))
    else:
        main()
