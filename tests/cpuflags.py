"""The CPU's feature flags as the kernel reports them (/proc/cpuinfo)."""
from typing import Optional, Set


def cpu_flags() -> Optional[Set[str]]:
    """The flags of the first processor, or None where they cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None
