"""What this process may compute with: the CPUs it is allowed to run on, not the machine's count.

``os.cpu_count()`` counts the machine's cores; a process pinned to some of them (``taskset``, a Slurm job) or held
to a CPU quota (a container's ``--cpus``, a Kubernetes limit: cgroup ``cpu.max``) gets fewer, and a plan or a
thread count built on the machine's count oversubscribes them: every step then slows down.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # cgroup v2: "QUOTA PERIOD" or "max PERIOD"


def cpu_quota(path: Path = CGROUP_CPU_MAX) -> float | None:
    """CPUs a cgroup v2 quota allows (``QUOTA / PERIOD``), or None without a quota."""
    try:
        quota, period = path.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """CPUs this process may use: those it is allowed to run on, capped by its cgroup's quota (at least 1)."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        allowed = os.cpu_count() or 1
    quota = cpu_quota()
    if quota is not None:
        allowed = min(allowed, max(1, math.floor(quota)))
    return max(1, allowed)
