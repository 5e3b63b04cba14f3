"""benchmarks/machine_info.py on a written /proc/cpuinfo."""

from tests.benchmarks.scripts import load

machine_info = load("machine_info")

CPUINFO = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8481C
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile amx_bf16 avx512vnni

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8481C
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile amx_bf16 avx512vnni
"""


def test_cpu_model_and_the_isa_flags_oneDNN_dispatches_on(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    model, flags = machine_info.cpu_info(str(path))
    assert model == "Intel(R) Xeon(R) Platinum 8481C"
    assert flags == ["avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]
    path.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma\n")
    assert machine_info.cpu_info(str(path)) == ("AMD EPYC", ["avx2"])


def test_a_machine_without_cpuinfo(tmp_path):
    assert machine_info.cpu_info(str(tmp_path / "missing")) == (None, [])
    described = machine_info.describe()
    assert described["cpus"] >= 1 and isinstance(described["isa"], list)
    assert {"platform", "node", "processor", "cpu_model"} <= set(described)
