"""The CPU's peak fp32 FLOP/s, derived from lscpu, and a measured matrix-product ceiling to hold it against.

Peak = cores x clock x fp32 FLOP per cycle per core. FLOP per cycle: two FMA pipes per core (Intel since
Haswell, AMD since Zen 2), each an FMA (2 FLOP) on 8 fp32 lanes with AVX2 = 32, 16 lanes with AVX-512 = 64,
except AMD Zen 4 (family 25 with avx512f), which runs AVX-512 on its 256-bit pipes, two passes each = 32;
without FMA, one add and one multiply pipe = 16 (AVX). The clock is lscpu's "CPU max MHz" when it reports
one, else /proc/cpuinfo's "cpu MHz" (in a VM that is the nominal clock; a boosting CPU can exceed it, which
the measured matmul then shows).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path


def _lscpu() -> dict:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines()) if v}


def peak(cores: int | None = None) -> dict:
    info = _lscpu()
    flags = set(info.get("Flags", "").split())
    if not flags and Path("/proc/cpuinfo").is_file():
        m = re.search(r"^flags\s*:\s*(.*)$", Path("/proc/cpuinfo").read_text(), re.M)
        flags = set(m.group(1).split()) if m else set()
    mhz, source = None, None
    if info.get("CPU max MHz"):
        mhz, source = float(info["CPU max MHz"]), "lscpu CPU max MHz"
    elif Path("/proc/cpuinfo").is_file():
        m = re.search(r"^cpu MHz\s*:\s*([\d.]+)", Path("/proc/cpuinfo").read_text(), re.M)
        if m:
            mhz, source = float(m.group(1)), "/proc/cpuinfo cpu MHz (nominal; lscpu reports no max)"
    zen4 = info.get("Vendor ID") == "AuthenticAMD" and info.get("CPU family") == "25"
    if "avx512f" in flags and "fma" in flags and zen4:
        per_cycle, isa = 32, "AVX-512 on AMD Zen 4's 256-bit pipes: 2 FMA pipes x 8 fp32 lanes x 2"
    elif "avx512f" in flags and "fma" in flags:
        per_cycle, isa = 64, "AVX-512 + FMA: 2 FMA pipes x 16 fp32 lanes x 2"
    elif "avx2" in flags and "fma" in flags:
        per_cycle, isa = 32, "AVX2 + FMA: 2 FMA pipes x 8 fp32 lanes x 2"
    elif "avx" in flags:
        per_cycle, isa = 16, "AVX: 1 add + 1 mul pipe x 8 fp32 lanes"
    else:
        per_cycle, isa = 8, "SSE: 1 add + 1 mul pipe x 4 fp32 lanes"
    cores = cores or os.cpu_count() or 1
    gflops = cores * (mhz or 0) / 1e3 * per_cycle
    return {"model": info.get("Model name", "?"), "cores": cores, "mhz": mhz, "mhz_source": source,
            "flop_per_cycle_per_core": per_cycle, "isa": isa, "peak_gflops": gflops or None,
            "how": f"{cores} cores x {mhz or 0:.0f} MHz ({source}) x {per_cycle} FLOP/cycle ({isa}) = {gflops:.1f} GFLOP/s"}


def sgemm_gflops(n: int = 2048, reps: int = 5) -> float:
    """fp32 matrix product n x n at torch's current thread count: the best a dense kernel does here."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9
