"""What a result was made with: library versions and this process's peak memory.
Recorded in run folders and export manifests so a number can be traced back."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

#: the packages whose versions can change a result
_PACKAGES = (
    "fraudkeras", "keras", "numpy", "polars", "scikit-learn",
    "jax", "jaxlib", "torch", "tensorflow", "tensorflow-cpu",
)  # fmt: skip


def package_version() -> str:
    """This package's installed version (servers report it in their metadata)."""
    try:
        return metadata.version("fraudkeras")
    except metadata.PackageNotFoundError:
        return "unknown"


def environment() -> dict[str, str]:
    """Versions of Python and every installed library that can change a result."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for package in _PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def peak_rss_mb() -> float | None:
    """This process's peak resident memory in MiB (None where unsupported)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)
