"""Builds and runs the native accuracy test of csrc/core/mathlib.h for every
instruction set this machine supports, in a reduced-size mode, compares the
results of the different builds, and checks that the CUDA build of the header
compiles when nvcc is available.

The full-size run (and the denser --dense / --exhaustive float sweeps) is the
same program without --points/--dpoints; see tests/native/mathlib_accuracy.cpp.
"""
import os
import shutil
import subprocess
import tempfile

import numpy as np
import pytest

from cpuflags import cpu_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, 'tests', 'native', 'mathlib_accuracy.cpp')
CUDA_SRC = os.path.join(ROOT, 'tests', 'native', 'mathlib_cuda_check.cu')
CORE = os.path.join(ROOT, 'csrc', 'core')

BASE_FLAGS = ['-O2', '-std=c++17', '-ffp-contract=off', '-pthread']
# name -> (extra compiler flags, /proc/cpuinfo flags the build needs)
ISAS = {
    'sse2': ([], []),
    'avx2': (['-mavx2', '-mfma', '-mf16c'], ['avx2', 'fma', 'f16c']),
    'avx512': (['-mavx512f', '-mavx512bw', '-mavx512vl', '-mavx512dq', '-mfma', '-mf16c'],
               ['avx512f', 'avx512bw', 'avx512vl', 'avx512dq', 'fma', 'f16c']),
}
FMA_ISAS = ('avx2', 'avx512')

# Points per sweep in the reduced mode: a few seconds per ISA on two cores.
POINTS = '300000'
DPOINTS = '100000'
DUMP_POINTS = '20000'


def compiler():
    return os.environ.get('CXX', 'g++')


class Unavailable(str):
    """Why an ISA build cannot run here."""


def missing_flags(isa):
    have = cpu_flags() or set()
    return [f for f in ISAS[isa][1] if f not in have]


@pytest.fixture(scope='module')
def binaries():
    """Compile the test once per supported ISA, in parallel. Maps ISA name to
    the executable, or to the reason it is unavailable."""
    if shutil.which(compiler()) is None:
        pytest.skip('no C++ compiler (%s)' % compiler())
    d = tempfile.mkdtemp(prefix='ta_mathlib_')
    procs, out = {}, {}
    for isa, (extra, _) in ISAS.items():
        miss = missing_flags(isa)
        if miss:
            out[isa] = Unavailable('CPU lacks %s, cannot run the %s build' % (', '.join(miss), isa))
            continue
        exe = os.path.join(d, 'mathlib_accuracy_' + isa)
        cmd = [compiler()] + BASE_FLAGS + extra + ['-DTA_ISA=' + isa, '-I' + CORE, SRC, '-o', exe]
        procs[isa] = (exe, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for isa, (exe, p) in procs.items():
        _, err = p.communicate()
        out[isa] = exe if p.returncode == 0 else RuntimeError('compile failed for %s:\n%s' % (isa, err[-4000:]))
    yield out, d
    shutil.rmtree(d, ignore_errors=True)


def get_exe(binaries, isa):
    exe = binaries[0][isa]
    if isinstance(exe, RuntimeError):
        raise exe
    if isinstance(exe, Unavailable):
        pytest.skip(exe)
    return exe


@pytest.mark.parametrize('isa', list(ISAS))
def test_mathlib_accuracy(isa, binaries):
    exe = get_exe(binaries, isa)
    res = subprocess.run([exe, '--points', POINTS, '--dpoints', DPOINTS], capture_output=True, text=True,
                         timeout=300)
    print(res.stdout)
    assert res.returncode == 0, 'accuracy test failed:\n' + res.stdout[-6000:] + res.stderr[-2000:]
    assert 'ALL OK' in res.stdout


def _dump(binaries, isa):
    exe = get_exe(binaries, isa)
    d = os.path.join(binaries[1], 'dump_' + isa)
    if not os.path.isdir(d):
        os.makedirs(d)
        subprocess.run([exe, '--dump', d, '--points', DUMP_POINTS, '--dpoints', DUMP_POINTS], check=True,
                       timeout=300)
    return d


def test_isa_builds_agree(binaries):
    """The FMA builds (AVX2, AVX-512) run the same operations lane by lane and
    must agree bit for bit. The SSE2 build has no FMA (madd is a multiply and
    an add there), so it differs in the last bit here and there; report how
    often, and check it stays within one ulp or two of the FMA builds."""
    avail = [i for i in ISAS if not isinstance(binaries[0][i], Unavailable)]
    if len(avail) < 2:
        pytest.skip('fewer than two ISA builds available')
    dumps = {isa: _dump(binaries, isa) for isa in avail}
    fma = [i for i in avail if i in FMA_ISAS]
    names = sorted(os.listdir(dumps[avail[0]]))
    for a, b in zip(fma, fma[1:]):
        for n in names:
            x = np.fromfile(os.path.join(dumps[a], n), dtype=np.uint8)
            y = np.fromfile(os.path.join(dumps[b], n), dtype=np.uint8)
            assert np.array_equal(x, y), '%s differs between %s and %s' % (n, a, b)
    if 'sse2' in avail and fma:
        ref = fma[0]
        for n in names:
            dt = np.float32 if n.endswith('_float.bin') else np.float64
            x = np.fromfile(os.path.join(dumps['sse2'], n), dtype=dt)
            y = np.fromfile(os.path.join(dumps[ref], n), dtype=dt)
            same = (x == y) | (np.isnan(x) & np.isnan(y))
            fin = np.isfinite(x) & np.isfinite(y) & (y != 0)
            ulps = np.zeros_like(x, dtype=np.float64)
            ulps[fin] = np.abs(x[fin].astype(np.float64) - y[fin]) / np.spacing(np.abs(y[fin])).astype(np.float64)
            print('%-24s sse2 vs %s: %6.3f%% differ, max %.1f ulp apart' % (
                n[:-4], ref, 100.0 * (1 - same.mean()), ulps.max()))
            assert (same | fin).all(), '%s: special values differ between sse2 and %s' % (n, ref)
            assert ulps.max() <= 4.0, n


def test_mathlib_cuda_compiles():
    nvcc = shutil.which('nvcc') or next(
        (p for p in ('/usr/local/cuda/bin/nvcc',) if os.path.exists(p)), None)
    if nvcc is None:
        pytest.skip('nvcc not found')
    d = tempfile.mkdtemp(prefix='ta_mathlib_cu_')
    try:
        obj = os.path.join(d, 'mathlib_cuda_check.o')
        cmd = [nvcc, '-std=c++17', '-I' + CORE, '-c', CUDA_SRC, '-o', obj]
        # Under `make sanitize` the ASan runtime is preloaded for Python;
        # nvcc's own binaries are not built for it and crash with it.
        env = {k: v for k, v in os.environ.items() if k != 'LD_PRELOAD'}
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
        assert res.returncode == 0, 'nvcc failed:\n' + res.stdout[-3000:] + res.stderr[-3000:]
    finally:
        shutil.rmtree(d, ignore_errors=True)
