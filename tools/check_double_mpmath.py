#!/usr/bin/env python3
"""Spot-check the double functions of csrc/core/mathlib.h against mpmath.

The native accuracy test measures double against glibc's long double
functions, which carry only 11 bits more than double. This script is an
independent check with a reference accurate to far below an ulp: it compiles
the scalar double path into a small shared library, evaluates it at random
points spread over every binade of each function's active range (plus the
hard spots: normcdf's far tail, tanhshrink near 0 and 1, exp's underflow
edge), and prints the maximum error in ulp per function.

    python tools/check_double_mpmath.py [--points N] [--isa avx2]
"""
import argparse
import ctypes
import math
import os
import random
import subprocess
import sys
import tempfile

import mpmath as mp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUNCS = ['exp', 'expm1', 'log', 'log1p', 'tanh', 'erf', 'erfc', 'sigmoid', 'softplus', 'log_sigmoid',
         'normcdf', 'normpdf', 'tanhshrink']

SHIM = '''
#include "mathlib.h"
#define X(f) extern "C" double ta_##f(double x) { return ta::m::f(x); }
X(exp) X(expm1) X(log) X(log1p) X(tanh) X(erf) X(erfc) X(sigmoid) X(softplus)
X(log_sigmoid) X(normcdf) X(normpdf) X(tanhshrink)
'''

ISA_FLAGS = {
    'sse2': [],
    'avx2': ['-mavx2', '-mfma', '-mf16c'],
    'avx512': ['-mavx512f', '-mavx512bw', '-mavx512vl', '-mavx512dq', '-mfma', '-mf16c'],
}


def build(isa):
    d = tempfile.mkdtemp(prefix='ta_mp_')
    src = os.path.join(d, 'shim.cpp')
    lib = os.path.join(d, 'shim.so')
    with open(src, 'w') as fh:
        fh.write(SHIM)
    cmd = ['g++', '-O2', '-std=c++17', '-ffp-contract=off', '-shared', '-fPIC', '-DTA_ISA=' + isa,
           '-I' + os.path.join(ROOT, 'csrc', 'core'), src, '-o', lib] + ISA_FLAGS[isa]
    subprocess.run(cmd, check=True)
    so = ctypes.CDLL(lib)
    out = {}
    for f in FUNCS:
        fn = getattr(so, 'ta_' + f)
        fn.restype = ctypes.c_double
        fn.argtypes = [ctypes.c_double]
        out[f] = fn
    return out


def ref(name, x):
    x = mp.mpf(x)
    if name == 'exp':
        return mp.exp(x)
    if name == 'expm1':
        return mp.expm1(x)
    if name == 'log':
        return mp.log(x)
    if name == 'log1p':
        return mp.log1p(x)
    if name == 'tanh':
        return mp.tanh(x)
    if name == 'erf':
        return mp.erf(x)
    if name == 'erfc':
        return mp.erfc(x)
    if name == 'sigmoid':
        return 1 / (1 + mp.exp(-x))
    if name == 'softplus':
        return mp.log1p(mp.exp(x))
    if name == 'log_sigmoid':
        return -mp.log1p(mp.exp(-x))
    if name == 'normcdf':
        return mp.ncdf(x)
    if name == 'normpdf':
        return mp.npdf(x)
    if name == 'tanhshrink':
        return x - mp.tanh(x)
    raise KeyError(name)


# (lo, hi) magnitude range swept log-uniformly, and which signs.
RANGES = {
    'exp': (1e-10, 746, '+-'), 'expm1': (1e-10, 710, '+-'), 'log': (1e-300, 1e300, '+'),
    'log1p': (1e-10, 1e10, '+-'), 'tanh': (1e-10, 20, '+-'), 'erf': (1e-10, 6, '+-'),
    'erfc': (1e-10, 27.3, '+-'), 'sigmoid': (1e-10, 745, '+-'), 'softplus': (1e-10, 745, '+-'),
    'log_sigmoid': (1e-10, 745, '+-'), 'normcdf': (1e-10, 38.5, '+-'), 'normpdf': (1e-10, 38.6, '+-'),
    'tanhshrink': (1e-10, 20, '+-'),
}


def ulp_err(got, r):
    if r == 0:
        return 0.0 if got == 0 else float('inf')
    ar = abs(r)
    e = max(int(mp.floor(mp.log(ar, 2))), -1022)
    return float(abs(mp.mpf(got) - r) / mp.mpf(2) ** (e - 52))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--points', type=int, default=3000)
    ap.add_argument('--isa', default='avx2', choices=list(ISA_FLAGS))
    ap.add_argument('--seed', type=int, default=1)
    args = ap.parse_args()
    mp.mp.prec = 160
    lib = build(args.isa)
    rng = random.Random(args.seed)
    worst_all = 0.0
    print('%-12s %10s %-24s  (ISA %s, %d points each)' % ('function', 'max ulp', 'at x', args.isa, args.points))
    for f in FUNCS:
        lo, hi, signs = RANGES[f]
        worst, at = 0.0, None
        for i in range(args.points):
            x = math.exp(rng.uniform(math.log(lo), math.log(hi)))
            if '-' in signs and (i & 1 or '+' not in signs):
                x = -x
            if f == 'log1p' and x <= -1:
                x = -rng.random()
            got = lib[f](x)
            r = ref(f, x)
            if abs(r) < mp.mpf(2) ** -1022:
                continue  # denormal results are covered by the native test
            if abs(r) > mp.mpf(2) ** 1024 * (1 - mp.mpf(2) ** -54):
                continue
            e = ulp_err(got, r)
            if e > worst:
                worst, at = e, x
        worst_all = max(worst_all, worst)
        print('%-12s %10.3f %-24r' % (f, worst, at))
    return 0


if __name__ == '__main__':
    sys.exit(main())
