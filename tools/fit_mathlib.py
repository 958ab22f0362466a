#!/usr/bin/env python3
"""Fit the polynomial approximations used by csrc/core/mathlib.h.

Every approximation has the form

    f(x) ~= fixed(x) + g(x) * P(v(x))

on an interval, where P is a polynomial whose coefficients are fitted here,
v(x) is the evaluation variable (x, x - c, x^2, 1/x^2, ...), and the error
that is minimised is the *relative* error of the whole right-hand side with
respect to f (that is what ulp accuracy of the final result needs).

Fitting is a Remez exchange in mpmath (so the same code serves the double
tables), followed by successive rounding: the highest-degree coefficient is
rounded to the target format first and the remaining ones are re-fitted to
absorb its rounding error, down to the constant term. Coefficients whose
exact value is forced by the function (Taylor leading terms) are kept in
`fixed` so that relative accuracy near zero does not depend on a fit.

Run:  python tools/fit_mathlib.py            # rewrites csrc/core/mathlib_coeffs.h
                                             # and csrc/core/mathlib_tables.h
      python tools/fit_mathlib.py --part tables   # only the 32-piece tables
      python tools/fit_mathlib.py --check    # only prints the errors
      add --cache FILE to reuse fits from an earlier run.
Fitting all tables takes tens of minutes (mpmath is faster with gmpy2).
"""
import argparse
import os
import struct
import sys

import mpmath as mp

mp.mp.dps = 40

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', 'csrc', 'core', 'mathlib_coeffs.h')
OUT_TABLES = os.path.join(HERE, '..', 'csrc', 'core', 'mathlib_tables.h')


# ----------------------------------------------------------------- rounding --
def round_to(x, fmt):
    x = mp.mpf(x)
    if fmt == 'd':
        return mp.mpf(float(x))
    f = struct.unpack('f', struct.pack('f', float(x)))[0]
    # float(x) rounds to double first; fix the rare double-rounding case.
    cand = [f, float(mp.mpf(f) * (1 + mp.mpf(2) ** -23)), float(mp.mpf(f) * (1 - mp.mpf(2) ** -23))]
    cand = [struct.unpack('f', struct.pack('f', c))[0] for c in cand]
    return mp.mpf(min(cand, key=lambda c: abs(mp.mpf(c) - x)))


def c_literal(x, fmt):
    v = float(x)
    h = v.hex()  # 0x1.xxxxxp+e
    if fmt == 'f':
        mant, exp = h.split('p')
        mant = mant.rstrip('0')
        if mant.endswith('.'):
            mant = mant[:-1]
        return '%sp%sf' % (mant, exp)
    mant, exp = h.split('p')
    mant = mant.rstrip('0')
    if mant.endswith('.'):
        mant = mant[:-1]
    return '%sp%s' % (mant, exp)


# -------------------------------------------------------------------- Remez --
class Problem:
    """Samples of f, fixed, g, v on a grid over [a, b]."""

    def __init__(self, f, fixed, g, v, a, b, ngrid=3000):
        a, b = mp.mpf(a), mp.mpf(b)
        xs = [a + (b - a) * (1 - mp.cos(mp.pi * i / (ngrid - 1))) / 2 for i in range(ngrid)]
        # The relative error is undefined where f vanishes; such points
        # (x = 0 for odd functions) are covered by the limit of neighbours.
        xs = [x for x in xs if f(x) != 0]
        self.x = xs
        self.f = [f(x) for x in xs]
        self.fix = [fixed(x) for x in xs]
        self.g = [g(x) for x in xs]
        self.v = [v(x) for x in xs]
        self.w = [1 / abs(y) for y in self.f]
        self.last_ref = None

    def err(self, coeffs):
        """Relative error at every grid point for full coefficient list."""
        out = []
        for f, fx, g, v, w in zip(self.f, self.fix, self.g, self.v, self.w):
            p = mp.mpf(0)
            for c in reversed(coeffs):
                p = p * v + c
            out.append(w * (fx + g * p - f))
        return out


def remez(prob, deg, frozen, iters=40, start=None):
    """Fit the coefficients not in `frozen` ({k: value}); return (maxerr, coeffs).

    `start` (a previous reference, as left in prob.last_ref) warm-starts the
    exchange; after freezing one more coefficient the old reference minus one
    point is usually within an iteration or two of the new optimum."""
    free = [k for k in range(deg + 1) if k not in frozen]
    n = len(free)
    N = len(prob.x)
    m = n + 1
    if n == 0:
        c = [frozen[k] for k in range(deg + 1)]
        return max(abs(e) for e in prob.err(c)), c
    idx = sorted(set(int(round((N - 1) * (1 - mp.cos(mp.pi * (i + 0.5) / m)) / 2)) for i in range(m)))
    if start is not None and len(start) >= m:
        # Drop points evenly to reach m.
        step = len(start) / m
        idx = sorted(set(start[int(i * step)] for i in range(m)))
        if len(idx) != m:
            idx = sorted(set(int(round((N - 1) * (1 - mp.cos(mp.pi * (i + 0.5) / m)) / 2))
                             for i in range(m)))
    best = None
    for _ in range(iters):
        if len(idx) != m:
            break
        A = mp.matrix(m, m)
        rhs = mp.matrix(m, 1)
        for r, i in enumerate(idx):
            g, v = prob.g[i], prob.v[i]
            for j, k in enumerate(free):
                A[r, j] = g * v ** k
            A[r, n] = (-1) ** r / prob.w[i]
            rest = sum((frozen[k] * g * v ** k for k in frozen), mp.mpf(0))
            rhs[r] = prob.f[i] - prob.fix[i] - rest
        try:
            sol = mp.lu_solve(A, rhs)
        except ZeroDivisionError:
            break
        c = [None] * (deg + 1)
        for k, val in frozen.items():
            c[k] = val
        for j, k in enumerate(free):
            c[k] = sol[j]
        err = prob.err(c)
        maxe = max(abs(e) for e in err)
        if best is None or maxe < best[0]:
            best = (maxe, c)
            prob.last_ref = list(idx)
        lev = abs(sol[n])
        if maxe - lev < mp.mpf('1e-3') * maxe:
            break
        # New reference: the largest error of each sign run, trimmed to m.
        runs, cur = [], [0]
        for j in range(1, N):
            if (err[j] >= 0) == (err[cur[-1]] >= 0):
                cur.append(j)
            else:
                runs.append(cur)
                cur = [j]
        runs.append(cur)
        peaks = [max(r, key=lambda j: abs(err[j])) for r in runs]
        while len(peaks) > m:
            if abs(err[peaks[0]]) < abs(err[peaks[-1]]):
                peaks = peaks[1:]
            else:
                peaks = peaks[:-1]
        idx = peaks
    return best


def fit(prob, deg, fmt, frozen=None, c0pair=False):
    """Remez, then successive rounding of the coefficients to the format,
    re-fitting the still-free ones after each step to absorb the error.

    The default order is from the top coefficient down. When that loses too
    much, the low-order coefficients (whose rounding the others can least
    absorb) are rounded first; the best order tried wins.

    With c0pair the constant term is kept as an unevaluated sum hi + lo of two
    values of the format: where the polynomial is dominated by its constant
    term, rounding that one coefficient would otherwise cost up to half an
    ulp of the result by itself."""
    good = mp.mpf(2) ** (-27.5 if fmt == 'f' else -57.5)
    frozen0 = dict(frozen or {})
    e_real, c_real = remez(prob, deg, frozen0)
    top = [k for k in range(deg, -1, -1) if k not in frozen0]
    orders = [top]
    for j in (1, 2, 3):
        low = [k for k in range(1, j + 1) if k in top]
        orders.append(low + [k for k in top if k not in low])
    best = None
    for order in orders:
        frozen = dict(frozen0)
        c = c_real
        for k in order:
            if k == 0 and c0pair:
                hi = round_to(c[0], fmt)
                lo = round_to(c[0] - hi, fmt)
                frozen[0] = hi + lo
            else:
                frozen[k] = round_to(c[k], fmt)
            e, c = remez(prob, deg, frozen, start=prob.last_ref)
        if best is None or e < best[0]:
            best = (e, c)
        if best[0] <= good:
            break
    return e_real, best[0], best[1]


def horner_error(prob, c, fmt, c0pair):
    """Worst-case rounding error of evaluating P by Horner in the format, in
    ulp of the result: sum over steps of half an ulp of the step's value times
    |v|^k (how that step's error reaches the result), over ulp(P). 0.5 is the
    ideal (only the final rounding). The comparison between layouts (piece
    boundaries, expansion points) is what matters."""
    import math
    mant = 23 if fmt == 'f' else 52
    ulp = lambda y: 2.0 ** (math.floor(math.log2(abs(y))) - mant) if y != 0 else 0.0
    worst = 0.0
    step = max(1, len(prob.v) // 600)
    for v in prob.v[::step]:
        v = float(v)
        q = float(c[-1])
        qs = [q]
        for ck in c[-2::-1]:
            q = q * v + float(ck)
            qs.append(q)
        qs = qs[::-1]
        if qs[0] == 0:
            continue
        e = sum(0.5 * ulp(qk) * abs(v) ** k for k, qk in enumerate(qs) if k > 0)
        if c0pair and len(qs) > 1:
            e += 0.5 * ulp(qs[1] * v)
        e += 0.5 * ulp(qs[0])
        worst = max(worst, e / ulp(qs[0]))
    return worst


# ------------------------------------------------------------- the tables --
class Spec:
    def __init__(self, name, fmt, doc, pieces, deg, frozen=None, c0pair=False):
        self.name, self.fmt, self.doc, self.pieces, self.deg = name, fmt, doc, pieces, deg
        self.frozen = frozen or {}
        self.c0pair = c0pair


def piece(f, a, b, fixed=lambda x: 0, g=lambda x: 1, v=lambda x: x, vdesc='x', ngrid=None, gdesc=None):
    # gdesc names g where a table gives some pieces a g of their own (it is
    # part of the cache key there).
    return dict(f=f, a=mp.mpf(a), b=mp.mpf(b), fixed=fixed, g=g, v=v, vdesc=vdesc, ngrid=ngrid, gdesc=gdesc)


def erfcx(x):
    return mp.exp(x * x) * mp.erfc(x)


def gtail(z):
    # Phi(-z) * exp(z^2 / 2): the normal tail with its Gaussian factor removed.
    return mp.ncdf(-z) * mp.exp(z * z / 2)


LN2 = mp.log(2)
RMAX = LN2 / 2 + mp.mpf('2e-5')          # |r| after exp's reduction, with slack
SQH = mp.sqrt(mp.mpf(0.5))

# Piece boundaries and expansion points (emitted as constants for mathlib.h).
# The last boundary is where the argument is capped (the result is far below
# the smallest denormal there); the last piece is a polynomial in s = 1/x^2.
LAYOUT = {
    ('erfc', 'f'): (['0', '0.5', '1.25', '2.5', '10.5'], ['0.25', '1.0625', '1.875']),
    ('ncdf', 'f'): (['0', '0.75', '1.75', '3.5', '14.5'], ['0.375', '1.5', '2.625']),
    ('erfc', 'd'): (['0', '0.75', '1.5', '2.5', '4', '27.5'], ['0.375', '1.125', '2', '3.25']),
    ('ncdf', 'd'): (['0', '1', '2', '3.5', '5.5', '39'], ['0.5', '1.5', '2.75', '4.5']),
}
TANH_POLY_MAX = mp.mpf('0.625')
TSHRINK_POLY_MAX = mp.mpf(1)
TSHRINK_MID = mp.mpf('0.75')
ERF_POLY_MAX = mp.mpf(1)
DEG = {'f': dict(exp=4, expm1=5, log1p=8, tanh=4, erf=5, tanhshrink=6, pw=8),
       'd': dict(exp=10, expm1=10, log1p=21, tanh=11, erf=11, pw=17)}


def specs():
    S = []
    for fmt in ('f', 'd'):
        pre = 'f32_' if fmt == 'f' else 'f64_'
        D = DEG[fmt]
        # exp(r) = 1 + r + r^2 P(r): relative error of exp itself.
        S.append(Spec(pre + 'exp_p', fmt, 'exp(r) ~ 1 + r + r^2 P(r), |r| <= ln2/2', [
            piece(mp.exp, -RMAX, RMAX, fixed=lambda r: 1 + r, g=lambda r: r * r, vdesc='r')], D['exp']))
        # expm1(r) = r + r^2 P(r): relative error of expm1, which is what
        # expm1 near zero returns directly.
        S.append(Spec(pre + 'expm1_p', fmt, 'expm1(r) ~ r + r^2 P(r), |r| <= ln2/2', [
            piece(mp.expm1, -RMAX, RMAX, fixed=lambda r: r, g=lambda r: r * r, vdesc='r')], D['expm1']))
        S.append(Spec(pre + 'log1p_p', fmt, 'log1p(f) ~ f + f^2 P(f), f in [sqrt(1/2)-1, sqrt(2)-1]', [
            piece(mp.log1p, SQH - 1 - mp.mpf('1e-6'), mp.sqrt(2) - 1 + mp.mpf('1e-6'),
                  fixed=lambda f: f, g=lambda f: f * f, vdesc='f')], D['log1p']))
        S.append(Spec(pre + 'tanh_p', fmt, 'tanh(x) ~ x + x^3 P(x^2), 0 <= x <= %s' % TANH_POLY_MAX, [
            piece(mp.tanh, 0, TANH_POLY_MAX, fixed=lambda x: x, g=lambda x: x ** 3, v=lambda x: x * x,
                  vdesc='x^2')], D['tanh']))
        S.append(Spec(pre + 'erf_p', fmt,
                      'erf(x) ~ x (2/sqrt(pi)) + x^3 P(x^2), 0 <= x <= %s' % ERF_POLY_MAX, [
                          piece(mp.erf, 0, ERF_POLY_MAX, fixed=lambda x: 2 * x / mp.sqrt(mp.pi),
                                g=lambda x: x ** 3, v=lambda x: x * x, vdesc='x^2')], D['erf']))
        if fmt == 'f':
            # x - tanh x: below TSHRINK_MID, x^3/3 + x^5 P(x^2) with the 1/3
            # applied as a float pair by the caller (so P is fitted against
            # the exact 1/3); from there to TSHRINK_POLY_MAX, where that
            # alternating correction grows to 40% of the result, a short
            # expansion about the middle. (double uses a Pade form, below.)
            cm = (TSHRINK_MID + TSHRINK_POLY_MAX) / 2
            S.append(Spec(pre + 'tanhshrink_pw', fmt,
                          'x - tanh(x) ~ x^3/3 + x^5 P(x^2) on [0, %s), P(x - %s) on [%s, %s)' % (
                              TSHRINK_MID, cm, TSHRINK_MID, TSHRINK_POLY_MAX), [
                              piece(lambda x: x - mp.tanh(x), 0, TSHRINK_MID,
                                    fixed=lambda x: x ** 3 / 3, g=lambda x: x ** 5, v=lambda x: x * x,
                                    vdesc='x^2'),
                              piece(lambda x: x - mp.tanh(x), TSHRINK_MID, TSHRINK_POLY_MAX,
                                    v=lambda x: x - cm, vdesc='x - %s' % cm)],
                          D['tanhshrink'], c0pair=True))
        # erfcx and the normal tail in pieces sharing one Horner evaluation
        # with per-lane coefficients: polynomials in x - c (c mid-piece, where
        # Horner's rounding error is least) and, for the tail, in s = 1/x^2,
        # where x erfcx(x) = Q(s) (gridded in s, the variable it is fitted in).
        for kind, fn, doc, var in (('erfc', erfcx, 'erfcx(x) = exp(x^2) erfc(x)', 'x'),
                                   ('ncdf', gtail, 'Phi(-z) exp(z^2/2)', 'z')):
            B, C = [[mp.mpf(v) for v in l] for l in LAYOUT[(kind, fmt)]]
            pcs = []
            for i in range(len(B) - 2):
                pcs.append(piece(fn, B[i], B[i + 1], v=(lambda c: lambda x: x - c)(C[i]),
                                 vdesc='%s - %s' % (var, mp.nstr(C[i], 6))))
            tailf = (lambda fn: lambda s: fn(1 / mp.sqrt(s)) / mp.sqrt(s))(fn)
            pcs.append(piece(tailf, 1 / B[-1] ** 2, 1 / B[-2] ** 2,
                             vdesc='s = 1/%s^2 (%s in [%s, %s]), times 1/%s' % (
                                 var, var, mp.nstr(B[-2], 6), mp.nstr(B[-1], 6), var)))
            name = pre + ('erfcx_pw' if kind == 'erfc' else 'ncdf_pw')
            S.append(Spec(name, fmt, doc, pcs, D['pw'], c0pair=True))
    return S


CACHE = {}
CACHE_FILE = None


def run_spec(spec, log):
    results = []
    for pc in spec.pieces:
        ngrid = pc['ngrid'] or (3000 if spec.fmt == 'f' else 2000)
        prob = Problem(pc['f'], pc['fixed'], pc['g'], pc['v'], pc['a'], pc['b'], ngrid)
        key = '|'.join(str(x) for x in (spec.name, spec.doc, pc['a'], pc['b'], pc['vdesc'], spec.deg,
                                        spec.fmt, spec.c0pair, sorted(spec.frozen.items())))
        if pc['gdesc']:
            key += '|g = ' + pc['gdesc']
        if key in CACHE:
            e_real, e_rounded, c = [mp.mpf(x) for x in CACHE[key][0:2]] + [[mp.mpf(x) for x in CACHE[key][2]]]
        else:
            e_real, e_rounded, c = fit(prob, spec.deg, spec.fmt, spec.frozen, spec.c0pair)
            CACHE[key] = [str(e_real), str(e_rounded), [str(x) for x in c]]
            if CACHE_FILE:
                import json
                with open(CACHE_FILE, 'w') as fh:
                    json.dump(CACHE, fh)
        k = horner_error(prob, c, spec.fmt, spec.c0pair)
        log('%-18s [%8.4f, %8.4f] deg %2d  rel err 2^%.2f (rounded coeffs 2^%.2f) horner %.2f ulp' % (
            spec.name, float(pc['a']), float(pc['b']), spec.deg, float(mp.log(e_real, 2)),
            float(mp.log(e_rounded, 2)), float(k)))
        results.append((pc, e_rounded, c, k))
    return results


def emit(spec, results):
    T = 'float' if spec.fmt == 'f' else 'double'
    lines = ['// %s' % spec.doc]
    for pc, e, c, k in results:
        lines.append('//   on [%s, %s] in v = %s: max relative error 2^%.1f, Horner rounding <= %.2f ulp' % (
            mp.nstr(pc['a'], 6), mp.nstr(pc['b'], 6), pc['vdesc'], float(mp.log(e, 2)), float(k)))
    lit = lambda x: c_literal(x, spec.fmt)
    cs = [r[2] for r in results]
    hi_lo = []
    for c in cs:
        hi = round_to(c[0], spec.fmt)
        hi_lo.append((hi, c[0] - hi))
    lo_arg = ', V& lo' if spec.c0pair else ''
    if len(results) == 1:
        sel = lambda vals: lit(vals[0])
        lines.append('template <class V>')
        lines.append('TA_HD V %s(V v%s) {' % (spec.name, lo_arg))
    else:
        np_ = len(results)
        masks = ', '.join('in%d' % i for i in range(np_ - 1))
        sel = lambda vals: 'pick<V>(%s, %s)' % (masks, ', '.join(lit(x) for x in vals))
        lines.append('// Piece i where in_i is the first true mask, the last piece where none is.')
        lines.append('template <class V>')
        lines.append('TA_HD V %s(V v, %s%s) {' % (
            spec.name, ', '.join('mask_t<V> in%d' % i for i in range(np_ - 1)), lo_arg))
    lines.append('  static_assert(sizeof(scalar_t<V>) == sizeof(%s), "coefficient format");' % T)
    first = sel([c[spec.deg] for c in cs])
    lines.append('  V p = %s;' % (first if len(results) > 1 else 'splat<V>(%s)' % first))
    for k in range(spec.deg - 1, 0, -1):
        lines.append('  p = madd<V>(p, v, %s);' % sel([c[k] for c in cs]))
    if spec.c0pair:
        lines.append('  // Constant term as hi + lo. The result is returned unrounded, as hi + lo')
        lines.append('  // (|p| < |c0| here), so that the caller rounds only once, later.')
        lines.append('  p = madd<V>(p, v, %s);' % sel([lo for hi, lo in hi_lo]))
        hi_sel = sel([hi for hi, lo in hi_lo])
        lines.append('  V hi;')
        lines.append('  fast_two_sum<V>(%s, p, hi, lo);' % (hi_sel if len(results) > 1 else 'splat<V>(%s)' % hi_sel))
        lines.append('  return hi;')
    else:
        lines.append('  p = madd<V>(p, v, %s);' % sel([c[0] for c in cs]))
        lines.append('  return p;')
    lines.append('}')
    return '\n'.join(lines)


def split_const(name, val, fmt):
    hi = round_to(val, fmt)
    lo = round_to(val - hi, fmt)
    T = 'float' if fmt == 'f' else 'double'
    return ['constexpr %s %s_hi = %s;' % (T, name, c_literal(hi, fmt)),
            'constexpr %s %s_lo = %s;' % (T, name, c_literal(lo, fmt))]


HEADER = '''// GENERATED by tools/fit_mathlib.py -- do not edit by hand.
//
// Minimax polynomial coefficients for mathlib.h. Each function evaluates one
// fitted polynomial P(v) by Horner's rule (madd, fused where the ISA has it);
// the comments state the approximated relation and the relative error of the
// polynomial with its coefficients already rounded to the stored format
// (arithmetic rounding during evaluation comes on top).
#pragma once

#include "simd.h"

namespace ta {
inline namespace TA_ISA {
namespace m {
namespace coef {

using namespace ::ta::TA_ISA::simd;

// Select among scalar constants for piecewise tables: the first argument
// whose mask is set, else the last. The masks are nested (each piece's
// bound is above the previous one), so on AVX-512 the number of set masks
// (each -1) is the piece index and one lane permute of the constants
// replaces the chain of blends.
template <class V, class M>
TA_HD V permute_pick(M idx, V tbl) {
#if defined(TA_X86_AVX512)
  if constexpr (sizeof(scalar_t<V>) == 4) return (V)_mm512_permutexvar_ps((__m512i)idx, (__m512)tbl);
  else return (V)_mm512_permutexvar_pd((__m512i)idx, (__m512d)tbl);
#else
  (void)idx;
  return tbl;
#endif
}
template <class V>
TA_HD V pick(mask_t<V> in0, scalar_t<V> a, scalar_t<V> b) {
  return where<V>(in0, splat<V>(a), splat<V>(b));
}
template <class V>
TA_HD V pick(mask_t<V> in0, mask_t<V> in1, scalar_t<V> a, scalar_t<V> b, scalar_t<V> c) {
  return where<V>(in0, splat<V>(a), pick<V>(in1, b, c));
}
template <class V>
TA_HD V pick(mask_t<V> in0, mask_t<V> in1, mask_t<V> in2, scalar_t<V> a, scalar_t<V> b, scalar_t<V> c,
             scalar_t<V> d) {
  if constexpr (kZmm<V>) return permute_pick<V>(in0 + in1 + in2 + 3, V{a, b, c, d});
  return where<V>(in0, splat<V>(a), pick<V>(in1, in2, b, c, d));
}
template <class V>
TA_HD V pick(mask_t<V> in0, mask_t<V> in1, mask_t<V> in2, mask_t<V> in3, scalar_t<V> a, scalar_t<V> b,
             scalar_t<V> c, scalar_t<V> d, scalar_t<V> e) {
  if constexpr (kZmm<V>) return permute_pick<V>(in0 + in1 + in2 + in3 + 4, V{a, b, c, d, e});
  return where<V>(in0, splat<V>(a), pick<V>(in1, in2, in3, b, c, d, e));
}
'''

FOOTER = '''
}  // namespace coef
}  // namespace m
}  // namespace TA_ISA
}  // namespace ta
'''


def tanh_pade(L):
    """Diagonal Pade approximant of tanh(x)/x in t = x^2, scaled to integer
    coefficients: tanh(x)/x ~ P(t)/Q(t).

    Returns (P, Q, N1) with x - tanh(x) = x^3 N1(t) / Q(t), N1 = (Q - P)/t.
    All three have positive coefficients (they come from the continued
    fraction tanh x = x/(1 + t/(3 + t/(5 + ...)))), so evaluating them for
    t >= 0 never cancels."""
    with mp.workdps(100):
        tx = mp.taylor(mp.tanh, 0, 4 * L + 4)
        ct = [tx[2 * k + 1] for k in range(2 * L + 2)]
        p, q = mp.pade(ct, L, L)
        for n in range(1, 60):
            sc = mp.fac2(2 * n + 1)
            vals = [x * sc for x in p + q]
            if all(abs(v - mp.nint(v)) < mp.mpf(10) ** -30 * max(1, abs(v)) for v in vals):
                break
        else:
            raise RuntimeError('no integer scaling found')
        P = [mp.nint(x * sc) for x in p]
        Q = [mp.nint(x * sc) for x in q]
    assert P[0] == Q[0]
    N1 = [Q[k] - P[k] for k in range(1, L + 1)]
    assert all(v > 0 for v in P + Q + N1)
    return P, Q, N1


def emit_pade(name, L, fmt, xmax, log):
    P, Q, N1 = tanh_pade(L)
    lim = 2 ** 24 if fmt == 'f' else 2 ** 53
    assert max(Q + P + N1) < lim, 'coefficients not exact in the format'
    worst = mp.mpf(0)
    for i in range(1, 2001):
        x = xmax * i / 2000
        t = x * x
        S = x * t * mp.polyval(N1[::-1], t) / mp.polyval(Q[::-1], t)
        worst = max(worst, abs(S / (x - mp.tanh(x)) - 1))
    log('%-18s Pade (%d,%d) on [0, %s]: rel err of x - tanh x 2^%.2f' % (
        name, L, L, xmax, float(mp.log(worst, 2))))
    T = 'float' if fmt == 'f' else 'double'
    lit = lambda v: c_literal(v, fmt)
    out = ['// Pade approximant of tanh(x)/x = P(t)/Q(t), t = x^2, with integer coefficients',
           '// (exact in %s). x - tanh(x) = x^3 N(t)/Q(t) with N = (Q - P)/t;' % T,
           '// on 0 <= x <= %s the relative error of that is 2^%.1f.' % (
               mp.nstr(xmax, 4), float(mp.log(worst, 2))),
           '// N and Q are returned as constant term + t * rest, so that the caller can',
           '// add the dominant constant without rounding error.']
    for nm, cs in (('num', N1), ('den', Q)):
        out.append('constexpr %s %s_%s0 = %s;' % (T, name, nm, lit(cs[0])))
        out.append('template <class V>')
        out.append('TA_HD V %s_%s1(V t) {' % (name, nm))
        out.append('  static_assert(sizeof(scalar_t<V>) == sizeof(%s), "coefficient format");' % T)
        out.append('  V p = splat<V>(%s);' % lit(cs[-1]))
        for k in range(len(cs) - 2, 0, -1):
            out.append('  p = madd<V>(p, t, %s);' % lit(cs[k]))
        out.append('  return p;')
        out.append('}')
    return '\n'.join(out)


def constants():
    out = ['// Piece boundaries (b1..) and expansion points (c0..) the tables were fitted for.']
    for fmt, T in (('f', 'float'), ('d', 'double')):
        pre = 'f32_' if fmt == 'f' else 'f64_'
        for kind in ('erfc', 'ncdf'):
            B, C = [[mp.mpf(v) for v in l] for l in LAYOUT[(kind, fmt)]]
            for i, v in enumerate(B[1:]):
                out.append('constexpr %s %s%s_b%d = %s;' % (T, pre, kind, i + 1, c_literal(v, fmt)))
            for i, v in enumerate(C):
                out.append('constexpr %s %s%s_c%d = %s;' % (T, pre, kind, i, c_literal(v, fmt)))
    for n, v in (('kTanhPolyMax', TANH_POLY_MAX), ('kTshrinkPolyMax', TSHRINK_POLY_MAX),
                 ('kTshrinkMid', TSHRINK_MID), ('kTshrinkMidC', (TSHRINK_MID + TSHRINK_POLY_MAX) / 2),
                 ('kErfPolyMax', ERF_POLY_MAX)):
        assert round_to(v, 'f') == v
        out.append('constexpr float %s = %s;' % (n, c_literal(v, 'f')))
    out.append('')
    out.append('// Constants kept as a pair (value = hi + lo) where their rounding would')
    out.append('// show in the result.')
    for fmt in ('f', 'd'):
        pre = 'f32_' if fmt == 'f' else 'f64_'
        out += split_const(pre + 'third', mp.mpf(1) / 3, fmt)
        out += split_const(pre + 'two_over_sqrtpi', 2 / mp.sqrt(mp.pi), fmt)
        out += split_const(pre + 'ln_sqrt2pi', mp.log(mp.sqrt(2 * mp.pi)), fmt)
        out += split_const(pre + 'rsqrt2', 1 / mp.sqrt(2), fmt)
    return '\n'.join(out)


# ------------------------------------------------- 32-piece lane tables --
# The float GELU and its derivative over |x| < 6 without an exponential or a
# division: 32 polynomial pieces in z = |x|, whose coefficients each fill
# two AVX-512 registers and are picked per lane by one two-register permute.
# Piece i holds the z with floor(z (z + 4) / 2) = i, so pieces shrink as z
# grows, in step with how fast log Phi(-z) turns (its slope is about -z):
# each piece then changes the function by a similar factor, which keeps
# Horner's rounding small. The pieces end at z = sqrt(68) - 2 = 6.25.
GT_A = 4
GT_S = mp.mpf(1) / 2
GT_N = 32
GT_DEG = 6
GT_ZONE_R = 1   # R's piece 0 holds R(z) / z
GT_ZONE_D = 4   # D's pieces 0..3 hold D(z) / (z - z0)


def gt_bound(i):
    return -mp.mpf(GT_A) / 2 + mp.sqrt(mp.mpf(GT_A) ** 2 / 4 + i / GT_S)


def gelu_r(z):
    # z Phi(-z): gelu(x) = -R(|x|) for x < 0 and x - R(x) for x >= 0.
    return z * mp.ncdf(-z)


def gelu_d(z):
    # Phi(-z) - z phi(z): gelu'(x) = D(|x|) for x < 0 and 1 - D(x) for x >= 0.
    return mp.ncdf(-z) - z * mp.npdf(z)


# The tanh form x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3), has the
# same symmetry (u is odd, so f(x) - f(-x) = x): the same R and D with
# sigmoid(-2u(z)) in place of Phi(-z).
GT_KAPPA = mp.mpf('0.044715')


def gelu_tanh_s(z):
    return 1 / (1 + mp.exp(2 * mp.sqrt(2 / mp.pi) * (z + GT_KAPPA * z ** 3)))


def gelu_tanh_r(z):
    return z * gelu_tanh_s(z)


def gelu_tanh_d(z):
    s = gelu_tanh_s(z)
    du2 = 2 * mp.sqrt(2 / mp.pi) * (1 + 3 * GT_KAPPA * z * z)
    return s - z * s * (1 - s) * du2


def root_of(fn):
    return mp.findroot(fn, mp.mpf('0.75'))


# name, R or D, the function, its description
GT_TABLES = (
    ('f32_gelu_r', 'r', gelu_r, 'R(z) = z Phi(-z)'),
    ('f32_gelu_d', 'd', gelu_d, 'D(z) = Phi(-z) - z phi(z)'),
    ('f32_gelu_tanh_r', 'r', gelu_tanh_r, 'R(z) = z sigmoid(-2u(z))'),
    ('f32_gelu_tanh_d', 'd', gelu_tanh_d, 'D(z) = s - 2 z u\'(z) s (1 - s), s = sigmoid(-2u(z))'),
)


# tanh(z), z = |x| >= 0, from 32 pieces of equal width 1/TANH_S. The pieces
# end at 32 / TANH_S, past 9.0109 where tanh rounds to 1 in float.
TANH_S = mp.mpf(7) / 2
TANH_N = 32
TANH_DEG = 5
TSHRINK_ZONE = 5   # x - tanh(x) on the same pieces: 0..4 hold (z - tanh z) / z^3


def tanh_bound(i):
    return i / TANH_S


def pieces_of(fn, bound, n, zone_g, zone_gdesc, mid0=None):
    # The piece index is computed in float with one rounding, so a z within
    # an ulp of a boundary may land on either side: each piece is fitted a
    # little beyond its ends.
    pad = mp.mpf(2) ** -20
    pcs = []
    for i in range(n):
        a, b = bound(i), bound(i + 1)
        a, b = a * (1 - pad), b * (1 + pad)
        c = round_to((a + b) / 2, 'f') if i or mid0 is None else mp.mpf(mid0)
        # Pieces below the zone hold the function divided by a factor that
        # vanishes with it (R and tanh at 0, D at its root), so that the
        # fitted quotient has no zero and keeps its relative accuracy.
        g = zone_g(i)
        pcs.append(piece(fn, a, b, g=g or (lambda z: 1), v=(lambda c: lambda z: z - c)(c),
                         vdesc='z - %s' % mp.nstr(c, 8), ngrid=800, gdesc=zone_gdesc if g else None))
        pcs[-1]['c'] = c
    return pcs


def table_specs():
    out = []
    for name, kind, fn, doc in GT_TABLES:
        zone = GT_ZONE_R if kind == 'r' else GT_ZONE_D
        z0 = root_of(fn) if kind == 'd' else None
        if kind == 'r':
            zone_g = lambda i: (lambda z: z) if i < zone else None
            note = '// Piece 0 holds R(z) / z; the caller multiplies by z.'
            gdesc = 'z'
        else:
            zone_g = (lambda z0: lambda i: (lambda z: z - z0) if i < zone else None)(z0)
            note = '// Pieces 0..%d hold D(z) / (z - z0); the caller multiplies by z - z0.' % (zone - 1)
            gdesc = 'z - z0'
        out.append(Spec(name, 'f', doc, pieces_of(fn, gt_bound, GT_N, zone_g, gdesc), GT_DEG, c0pair=True))
        out[-1].bound, out[-1].note = gt_bound, note
    # tanh(z) / z on every piece: near 0 that keeps the relative accuracy down
    # to the subnormals, and above it keeps the terms in v small beside the
    # constant (tanh itself changes by a third across the first pieces, and
    # Horner's rounding would show), with no select between forms.
    # Piece 0 is expanded about 0, so that tiny z (subnormals included) meet
    # c ~ 1 and q ~ -z^2/3, and z (c + q) is z itself: about its middle, q z
    # would be a subnormal rounded to its spacing there.
    out.append(Spec('f32_tanh', 'f', 'tanh(z)',
                    pieces_of(mp.tanh, tanh_bound, TANH_N, lambda i: lambda z: z, 'z', mid0=0),
                    TANH_DEG, c0pair=True))
    out[-1].bound = tanh_bound
    out[-1].note = '// Every piece holds tanh(z) / z; the caller multiplies by z.'
    # z - tanh z ~ z^3 / 3 near 0, and it changes by a factor of 2 or more
    # across each of the first pieces: there it is held divided by z^3.
    zone_g = lambda i: (lambda z: z ** 3) if i < TSHRINK_ZONE else None
    out.append(Spec('f32_tanhshrink', 'f', 'S(z) = z - tanh(z)',
                    pieces_of(lambda z: z - mp.tanh(z), tanh_bound, TANH_N, zone_g, 'z^3'),
                    TANH_DEG, c0pair=True))
    out[-1].bound = tanh_bound
    out[-1].note = '// Pieces 0..%d hold S(z) / z^3; the caller multiplies by z^3.' % (TSHRINK_ZONE - 1)
    return out


def emit_table(spec, results):
    lit = lambda x: c_literal(x, 'f')
    worst = max(r[1] for r in results)
    horner = max(r[3] for r in results)
    rows = {'mid': [r[0]['c'] for r in results], 'hi': [], 'lo': []}
    for pc, e, c, k in results:
        hi = round_to(c[0], 'f')
        rows['hi'].append(hi)
        rows['lo'].append(c[0] - hi)
    fmt_row = lambda vals: '{' + ', '.join(lit(v) for v in vals) + '}'
    lines = ['// %s: 32 pieces on [0, %s), degree %d in v = z - mid.' % (
        spec.doc, mp.nstr(spec.bound(32), 6), spec.deg),
        '// Max relative error 2^%.1f with the coefficients as stored, Horner rounding <= %.2f ulp.' % (
            float(mp.log(worst, 2)), horner)]
    lines.append(spec.note)
    lines.append('alignas(64) inline constexpr Table32<%d> %s = {' % (spec.deg, spec.name))
    lines.append('    %s,' % fmt_row(rows['mid']))
    lines.append('    %s,' % fmt_row(rows['hi']))
    lines.append('    %s,' % fmt_row(rows['lo']))
    lines.append('    {')
    for k in range(1, spec.deg + 1):
        lines.append('        %s,' % fmt_row([r[2][k] for r in results]))
    lines.append('    }};')
    return '\n'.join(lines)


TABLES_HEADER = '''// GENERATED by tools/fit_mathlib.py -- do not edit by hand.
//
// 32-piece polynomial tables read with one lane permute per coefficient
// (see simd::Table32 and table32_eval in mathlib.h).
#pragma once

#include "simd.h"

namespace ta {
inline namespace TA_ISA {
namespace m {
namespace coef {

using ::ta::TA_ISA::simd::Table32;

// Piece of z: floor(z (z + kGeluTblA) * kGeluTblS); the table ends at kGeluTblEnd.
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--check', action='store_true')
    ap.add_argument('--only', default=None)
    ap.add_argument('--part', choices=('all', 'coeffs', 'tables'), default='all')
    ap.add_argument('--cache', default=None,
                    help='JSON file remembering fits between runs (fitting takes minutes)')
    args = ap.parse_args()
    global CACHE_FILE
    CACHE_FILE = args.cache
    if args.cache and os.path.exists(args.cache):
        import json
        with open(args.cache) as fh:
            CACHE.update(json.load(fh))
    log = lambda s: print(s, file=sys.stderr, flush=True)
    if args.part in ('all', 'tables') and not args.only:
        tb = [emit_table(sp, run_spec(sp, log)) for sp in table_specs()]
        consts = ['constexpr float kGeluTblA = %s;' % c_literal(GT_A, 'f'),
                  'constexpr float kGeluTblS = %s;' % c_literal(GT_S, 'f'),
                  'constexpr float kGeluTblEnd = %s;' % c_literal(round_to(gt_bound(GT_N), 'f'), 'f'),
                  'constexpr int kGeluRZone = %d;' % GT_ZONE_R,
                  'constexpr int kGeluDZone = %d;' % GT_ZONE_D,
                  '// Piece of z for tanh: floor(z * kTanhTblS); the table ends at kTanhTblEnd.',
                  'constexpr float kTanhTblS = %s;' % c_literal(TANH_S, 'f'),
                  'constexpr float kTanhTblEnd = %s;' % c_literal(round_to(tanh_bound(TANH_N), 'f'), 'f'),
                  'constexpr int kTanhshrinkZone = %d;' % TSHRINK_ZONE,
                  '// The roots z0 of the D tables as hi + lo: the derivatives are 0 at x = -z0.']
        for name, kind, fn, doc in GT_TABLES:
            if kind == 'd':
                consts += split_const(name[:-2] + '_root', root_of(fn), 'f')
        text = TABLES_HEADER + '\n'.join(consts) + '\n\n' + '\n\n'.join(tb) + '\n' + FOOTER
        if args.check:
            print(text)
        else:
            with open(OUT_TABLES, 'w') as fh:
                fh.write(text)
            log('wrote ' + os.path.relpath(OUT_TABLES))
    if args.part == 'tables':
        if args.cache:
            import json
            with open(args.cache, 'w') as fh:
                json.dump(CACHE, fh)
        return
    blocks = []
    for spec in specs():
        if args.only and spec.name not in args.only.split(','):
            continue
        res = run_spec(spec, log)
        blocks.append(emit(spec, res))
    if not args.only:
        blocks.append(emit_pade('f64_tshrink', 5, 'd', TSHRINK_POLY_MAX, log))
    if args.cache:
        import json
        with open(args.cache, 'w') as fh:
            json.dump(CACHE, fh)
    if args.check or args.only:
        print('\n\n'.join(blocks))
        return
    with open(OUT, 'w') as fh:
        fh.write(HEADER + '\n' + constants() + '\n\n' + '\n\n'.join(blocks) + '\n' + FOOTER)
    log('wrote ' + os.path.relpath(OUT))


if __name__ == '__main__':
    main()
