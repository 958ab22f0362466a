"""The instruction set is chosen at import like PyTorch's own: from
ATEN_CPU_CAPABILITY and the CPU, with TORCH_ACTIVATIONS_CPU_CAPABILITY
overriding it (each in a fresh interpreter, since the choice is made once at
load)."""
import os
import subprocess
import sys

import pytest

import torch_activations as ta

PROBE = ("import torch, torch_activations as ta; "
         "print(torch.backends.cpu.get_cpu_capability(), ta.cpu_capability())")


def probe(**env):
    full = {k: v for k, v in os.environ.items()
            if k not in ("ATEN_CPU_CAPABILITY", "TORCH_ACTIVATIONS_CPU_CAPABILITY")}
    full.update(env)
    r = subprocess.run([sys.executable, "-c", PROBE], env=full, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    theirs, ours = r.stdout.split()
    return theirs, ours, r.stderr


@pytest.mark.parametrize("isa", ta.supported_cpu_capabilities())
def test_aten_cpu_capability_is_followed(isa):
    theirs, ours, _ = probe(ATEN_CPU_CAPABILITY=isa.lower())
    # PyTorch may name a variant (AVX512 with VNNI / BF16 ...); ours is the
    # widest of our builds it allows.
    assert isa in theirs.upper() or isa == "DEFAULT" and theirs == "DEFAULT"
    assert ours == isa


def test_our_variable_overrides_aten_and_a_bad_value_is_ignored_with_a_warning():
    isas = ta.supported_cpu_capabilities()
    _, ours, _ = probe(ATEN_CPU_CAPABILITY="default", TORCH_ACTIVATIONS_CPU_CAPABILITY=isas[0].lower())
    assert ours == isas[0]
    _, ours, err = probe(TORCH_ACTIVATIONS_CPU_CAPABILITY="sse9")
    assert ours == isas[0]   # the widest the CPU has, as without the variable
    assert "TORCH_ACTIVATIONS_CPU_CAPABILITY=sse9 is not one of DEFAULT, AVX2, AVX512; ignored" in err


def test_extension_runs_its_own_loops_on_torchs_openmp_runtime():
    # at::parallel_for is inline: built without OpenMP, the loops the library
    # starts itself would run on one thread whatever torch.set_num_threads
    # says. Built with it, the one OpenMP runtime in the process is torch's.
    import torch
    from torch_activations import _C

    with open(_C.__file__, "rb") as f:
        assert b"GOMP_parallel" in f.read(), "the extension was built without -fopenmp"
    mapped = {line.split()[-1] for line in open("/proc/self/maps") if "gomp" in line}
    assert mapped and all(os.path.dirname(torch.__file__) in m for m in mapped), mapped
