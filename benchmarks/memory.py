"""What a process's memory is made of, from /proc/PID/smaps (Linux): RSS counts every page the
process maps, shared libraries included, so a sum of RSS over many actors counts libraries
once per actor. USS (its private pages) is what one more actor really costs; PSS shares each
shared page out among the processes that map it. Contributors are grouped by what backs the
mapping: a file (a shared library, by name), the heap, or anonymous memory (Python's object
arenas and large allocations, Ray's buffers).
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field

import psutil

ANONYMOUS = "anonymous (Python objects, buffers)"


@dataclass
class Footprint:
    rss_kb: int = 0
    pss_kb: int = 0
    uss_kb: int = 0
    # Mapping name -> private kB (what this process alone pays for it).
    private_by: dict[str, int] = field(default_factory=dict)

    def largest(self, count: int = 5) -> list[tuple[str, int]]:
        ranked = sorted(self.private_by.items(), key=lambda item: item[1], reverse=True)
        return ranked[:count]

    def describe(self, count: int = 5) -> str:
        return ", ".join(f"{name} {kb / 1024:.1f} MB" for name, kb in self.largest(count))


def _name(pathname: str) -> str:
    if not pathname:
        return ANONYMOUS
    if pathname.startswith("["):
        return pathname.strip("[]")  # heap, stack, vdso (no brackets: rich reads them as markup)
    return os.path.basename(pathname)


def _is_header(fields: list[str]) -> bool:
    """A mapping's first line: address range, permissions, offset, device, inode, [path]."""
    return len(fields) >= 5 and "-" in fields[0] and len(fields[1]) == 4 and ":" in fields[3]


def footprint(pid: int) -> Footprint | None:
    """The process's memory by mapping, or None when it is gone (or not readable)."""
    found = Footprint()
    private_by: defaultdict[str, int] = defaultdict(int)
    current = ANONYMOUS
    try:
        with open(f"/proc/{pid}/smaps") as smaps:
            for line in smaps:
                fields = line.split()
                if _is_header(fields):
                    current = _name(" ".join(fields[5:]))
                    continue
                if len(fields) != 3 or fields[2] != "kB":
                    continue
                key, kb = fields[0], int(fields[1])
                if key == "Rss:":
                    found.rss_kb += kb
                elif key == "Pss:":
                    found.pss_kb += kb
                elif key in ("Private_Clean:", "Private_Dirty:"):
                    found.uss_kb += kb
                    private_by[current] += kb
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    found.private_by = dict(private_by)
    return found


def title(process: psutil.Process) -> str:
    """What the process calls itself: Ray retitles its workers (`ray::CategoryActor...`,
    `ray::IDLE`); others by command line. Raises psutil.Error when it is gone."""
    return " ".join(process.cmdline()) or process.name()


def titled(processes: list[psutil.Process], marker: str) -> list[Footprint]:
    """Footprints of the processes whose title contains `marker`."""
    found = []
    for process in processes:
        try:
            named = title(process)
        except psutil.Error:
            continue
        if marker in named and (measured := footprint(process.pid)) is not None:
            found.append(measured)
    return found


def median(footprints: list[Footprint]) -> Footprint | None:
    """The footprint of median private size (a real process's, contributors and all)."""
    if not footprints:
        return None
    ranked = sorted(footprints, key=lambda f: f.uss_kb)
    return ranked[len(ranked) // 2]
