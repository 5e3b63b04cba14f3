"""The machine a benchmark ran on, for its report.

`platform.processor()` is empty on most Linux machines, and two virtual machines
of the same name can have different CPUs; the CPU's model and the vector
instruction sets that TensorFlow's CPU kernels (oneDNN) choose between are what
tell two reports' wall times apart.
"""

import os
import platform

#: The /proc/cpuinfo flags recorded: the vector and matrix extensions oneDNN dispatches on.
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu_info(path="/proc/cpuinfo"):
    """`(model name, [the ISA_FLAGS it has])`; `(None, [])` where the file is missing."""
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError:
        return None, []
    model, flags = None, set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    return model, [flag for flag in ISA_FLAGS if flag in flags]


def describe():
    """The report's `machine` field: platform, node, CPU count, CPU model and ISA flags."""
    model, flags = cpu_info()
    return {"platform": platform.platform(), "node": platform.node(), "cpus": os.cpu_count(),
            "processor": platform.processor(), "cpu_model": model, "isa": flags}
