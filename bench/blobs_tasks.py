"""Object storage and task queue benchmarks in one run (issue: storage and tasks).

1. The local object storage adapter's put/get throughput for 1 MB objects against plain
   file writes/reads (target: adapter/plain >= 0.7) — ``bench.blobs``.
2. The in-process task queue's dispatch rate and enqueue-to-start latency for no-op tasks
   (targets: >= 500 tasks/s, p50 <= 5 ms) — ``bench.tasks``.

Each part runs with its default sizes; ``--quick`` runs each with a few objects and tasks
instead (a smoke run that shows both still work: its figures mean little).

Run: ``.venv/bin/python -m bench.blobs_tasks [--quick]`` (each part also runs on its own).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from bench import blobs, tasks

QUICK_BLOBS = ("--objects", "5", "--rounds", "1")
QUICK_TASKS = ("--tasks", "50", "--samples", "10")


def main(argv: Sequence[str] | None = None) -> None:
    """Run both parts, with their default sizes unless ``--quick``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="a few objects and tasks only (a smoke run)"
    )
    args = parser.parse_args(argv)
    print("== object storage: local adapter vs plain files")
    blobs.main(QUICK_BLOBS if args.quick else ())
    print("\n== task queue: in-process worker")
    tasks.main(QUICK_TASKS if args.quick else ())


if __name__ == "__main__":
    main()
