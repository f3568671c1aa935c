"""What the benchmarks ran on, and an estimate of its peak FLOP rate.

Standard library only: ``bench/report.py`` imports it too and must run
without fastnet, numba or pytest installed.

The peak is an *estimate*, never a measurement::

    peak = physical cores x GHz x FLOPs per cycle per core

with FLOPs per cycle from the CPU flags, assuming two vector FMA units per core
(true of Haswell and later Intel cores and of AMD Zen 2 and later):

===============  =================  =================
flags            float32 per cycle  float64 per cycle
===============  =================  =================
AVX-512F + FMA   64                 32
AVX2 + FMA       32                 16
AVX              16                 8
otherwise (SSE)  8                  4
===============  =================  =================

The clock is lscpu's "CPU max MHz" when the kernel reports it, else the
"cpu MHz" of /proc/cpuinfo (on a VM usually the nominal clock: turbo is not
counted).
"""

from __future__ import annotations

import os
import platform
import re
import subprocess

#: FLOPs per cycle per core (float32, float64) by the best vector extension.
FLOPS_PER_CYCLE = {
    "avx512f+fma": (64, 32),
    "avx2+fma": (32, 16),
    "avx": (16, 8),
    "sse": (8, 4),
}


def _lscpu() -> dict[str, str]:
    try:
        out = subprocess.run(
            ["lscpu"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    facts = {}
    for line in out.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            facts[key.strip()] = value.strip()
    return facts


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (Linux only)."""
    facts: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    if facts:
                        break
                    continue
                key, sep, value = line.partition(":")
                if sep:
                    facts.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return facts


def _int(text, default=None):
    try:
        return int(text)
    except (TypeError, ValueError):
        return default


def _float(text, default=None):
    try:
        return float(text)
    except (TypeError, ValueError):
        return default


def cpu_facts() -> dict:
    """CPU model, core counts, clock, vector flags and the peak estimate.

    Returns
    -------
    dict
        JSON-able: ``model``, ``logical_cpus``, ``physical_cores``, ``mhz``,
        ``mhz_source``, ``vector`` (a key of :data:`FLOPS_PER_CYCLE`),
        ``peak_gflops_float32``, ``peak_gflops_float64`` (estimates, or None
        when the clock is unknown), ``peak_formula``.
    """
    ls = _lscpu()
    ci = _cpuinfo()
    model = ls.get("Model name") or ci.get("model name") or platform.processor() or "unknown"
    logical = os.cpu_count() or 1
    sockets = _int(ls.get("Socket(s)"))
    per_socket = _int(ls.get("Core(s) per socket"))
    if sockets and per_socket:
        physical = sockets * per_socket
    else:
        physical = _int(ci.get("cpu cores"), logical)
    mhz, source = _float(ls.get("CPU max MHz")), "lscpu CPU max MHz"
    if not mhz:
        mhz, source = _float(ci.get("cpu MHz")), "/proc/cpuinfo cpu MHz"
    if not mhz:
        mhz, source = _float(ls.get("CPU MHz")), "lscpu CPU MHz"
    flags = set((ci.get("flags") or ls.get("Flags") or "").split())
    if {"avx512f", "fma"} <= flags:
        vector = "avx512f+fma"
    elif {"avx2", "fma"} <= flags:
        vector = "avx2+fma"
    elif "avx" in flags:
        vector = "avx"
    else:
        vector = "sse"
    f32, f64 = FLOPS_PER_CYCLE[vector]
    ghz = mhz / 1000 if mhz else None
    return {
        "model": re.sub(r"\s+", " ", model).strip(),
        "logical_cpus": logical,
        "physical_cores": physical,
        "mhz": mhz,
        "mhz_source": source if mhz else None,
        "vector": vector,
        "peak_gflops_float32": physical * ghz * f32 if ghz else None,
        "peak_gflops_float64": physical * ghz * f64 if ghz else None,
        "peak_formula": (
            f"{physical} cores x {ghz:.2f} GHz x {f32}/{f64} FLOPs/cycle (f32/f64, {vector})"
            if ghz
            else "unknown clock"
        ),
    }


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (other work competing for the cores)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None
