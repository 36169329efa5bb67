"""kosim.precision: whether bf16 is fast on this CPU, decided from its feature flags (not oneDNN's emulation check)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import kosim.precision as precision

ROOT = Path(__file__).resolve().parents[1]

# Abridged /proc/cpuinfo "flags" of real CPU families.
ZEN3 = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi1 bmi2 sha_ni vaes vpclmulqdq"
CASCADE_LAKE = "fpu sse sse2 avx fma avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni"
ICE_LAKE = CASCADE_LAKE + " avx512ifma avx512vbmi avx512_vbmi2 avx512_bitalg avx512_vpopcntdq gfni vaes"
COOPER_LAKE = CASCADE_LAKE + " avx512_bf16"
SAPPHIRE_RAPIDS = ICE_LAKE + " avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8"
ZEN4 = ZEN3 + " avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16"
NE_CONVERT = ZEN3 + " avx_vnni avx_ne_convert"


@pytest.mark.parametrize(
    ("flags", "native"),
    [
        (ZEN3, False),
        (CASCADE_LAKE, False),  # AVX-512 + VNNI only: oneDNN emulates bf16 there (4x slower than float32)
        (ICE_LAKE, False),
        (COOPER_LAKE, False),  # AVX-512 BF16 dot products without AMX: measured slower than float32
        (SAPPHIRE_RAPIDS, True),
        (ZEN4, False),
        (NE_CONVERT, False),
        ("", False),
    ],
)
def test_native_bf16_is_decided_by_the_flags(flags, native) -> None:
    assert precision.flags_have_native_bf16(flags.split()) is native


def cpuinfo(flags: str) -> str:
    cpu = (
        f"processor\t: {{n}}\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU\nflags\t\t: {flags}\nbogomips\t: 1.0\n"
    )
    return "\n".join(cpu.format(n=n) for n in range(2))


def test_cpu_flags_reads_the_flags_line() -> None:
    assert precision.cpu_flags(cpuinfo(COOPER_LAKE)) == frozenset(COOPER_LAKE.split())
    # aarch64 Linux lists "Features", macOS and Windows have no /proc/cpuinfo at all: no x86 flags to read.
    assert precision.cpu_flags("processor\t: 0\nFeatures\t: fp asimd bf16 sve\nCPU part\t: 0xd40\n") is None
    assert precision.cpu_flags("") is None


@pytest.fixture
def fake_cpu(monkeypatch, tmp_path):
    """Point kosim.precision at a fake /proc/cpuinfo with the given flags (None: no such file)."""

    def use(flags: str | None) -> None:
        path = tmp_path / "cpuinfo"
        if flags is not None:
            path.write_text(cpuinfo(flags), encoding="utf-8")
        monkeypatch.setattr(precision, "CPUINFO_PATH", str(path), raising=False)
        precision._cpu_has_native_bf16.cache_clear()

    yield use
    precision._cpu_has_native_bf16.cache_clear()


def test_avx512_without_bf16_is_not_fast(fake_cpu) -> None:
    # oneDNN's _is_mkldnn_bf16_supported() says True on such a CPU; "auto" must still pick float32.
    fake_cpu(CASCADE_LAKE)
    assert precision.bf16_is_fast("cpu") is False
    assert precision.resolve_bf16("auto", "cpu") is False
    assert precision.resolve_bf16(True, "cpu") is True


def test_native_bf16_cpu_is_fast_where_torch_can_run_it(fake_cpu, monkeypatch) -> None:
    fake_cpu(SAPPHIRE_RAPIDS)
    monkeypatch.setattr(precision, "_onednn_bf16_supported", lambda: True)
    assert precision.resolve_bf16("auto", "cpu") is True
    # The flags say the hardware can; a torch build without oneDNN bf16 kernels still cannot.
    precision._cpu_has_native_bf16.cache_clear()
    monkeypatch.setattr(precision, "_onednn_bf16_supported", lambda: False)
    assert precision.resolve_bf16("auto", "cpu") is False


def test_no_cpuinfo_means_float32(fake_cpu) -> None:
    fake_cpu(None)
    assert precision.bf16_is_fast("cpu") is False


def test_the_benchmarks_default_dtypes_follow_the_same_answer(fake_cpu, monkeypatch, capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_machine", ROOT / "benchmarks" / "machine.py")
    machine = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(machine)
    fake_cpu(ICE_LAKE)
    assert machine.default_dtypes("fp32", "bf16") == "fp32"
    assert "no native bf16" in capsys.readouterr().out
    fake_cpu(SAPPHIRE_RAPIDS)
    monkeypatch.setattr(precision, "_onednn_bf16_supported", lambda: True)
    assert machine.default_dtypes("float32", "bfloat16") == "float32,bfloat16"
