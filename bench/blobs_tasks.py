"""Object storage and task queue benchmarks in one run (issue: storage and tasks).

1. The local object storage adapter's put/get throughput for 1 MB objects against plain
   file writes/reads (target: adapter/plain >= 0.7) — ``bench.blobs``.
2. The in-process task queue's dispatch rate and enqueue-to-start latency for no-op tasks
   (targets: >= 500 tasks/s, p50 <= 5 ms) — ``bench.tasks``.

Run: ``.venv/bin/python -m bench.blobs_tasks`` (each part also runs on its own).
"""

from __future__ import annotations

import sys

from bench import blobs, tasks


def main() -> None:
    """Run both parts with their default sizes."""
    arguments = sys.argv[1:]
    sys.argv = [sys.argv[0]]
    if arguments:
        raise SystemExit("bench.blobs_tasks takes no options; run bench.blobs or bench.tasks")
    print("== object storage: local adapter vs plain files")
    blobs.main()
    print("\n== task queue: in-process worker")
    tasks.main()


if __name__ == "__main__":
    main()
