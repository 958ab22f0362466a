// Throughput of csrc/core/mathlib.h against the C library, in ns per element.
//
// Our functions run over an L1-resident array through simd::native<T> (the
// path the CPU kernels use); the C library column is the same loop calling
// glibc's scalar function (or, for compositions, the usual formula built from
// them). Inputs are spread over the range where each function does real work.
//
// Build one binary per ISA, with the project's flags:
//   g++ -O3 -std=c++17 -ffp-contract=off [-mavx2 -mfma -mf16c | -mavx512f ...]
//       -DTA_ISA=<name> -Icsrc/core benchmarks/bench_mathlib.cpp -o bench
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "mathlib.h"

#define TA_STR2(x) #x
#define TA_STR(x) TA_STR2(x)

namespace {

using ta::simd::native;

constexpr size_t kN = 4096;

template <class T, class F>
__attribute__((noinline)) void run_ours(F f, const T* in, T* out) {
  using V = native<T>;
  constexpr size_t L = sizeof(V) / sizeof(T);
  for (size_t i = 0; i < kN; i += L) {
    V v;
    std::memcpy(&v, in + i, sizeof v);
    V r = f(v);
    std::memcpy(out + i, &r, sizeof r);
  }
}
template <class T, class F>
__attribute__((noinline)) void run_libm(F f, const T* in, T* out) {
  for (size_t i = 0; i < kN; ++i) out[i] = f(in[i]);
}

// CPU time of this thread: unlike wall-clock time it does not grow when the
// machine is shared and the thread gets descheduled.
double thread_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

template <class Fn>
double time_ns(Fn fn) {
  // Enough repetitions for ~20 ms per measurement; best of 7.
  int reps = 1;
  for (;;) {
    double t0 = thread_seconds();
    for (int r = 0; r < reps; ++r) fn();
    if (thread_seconds() - t0 > 0.02) break;
    reps *= 2;
  }
  double best = 1e30;
  for (int k = 0; k < 7; ++k) {
    double t0 = thread_seconds();
    for (int r = 0; r < reps; ++r) fn();
    best = std::min(best, thread_seconds() - t0);
  }
  return best * 1e9 / (double(reps) * kN);
}

template <class T>
std::vector<T> inputs(double lo, double hi) {
  std::vector<T> v(kN);
  uint32_t s = 12345;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = (T)(lo + (hi - lo) * ((s >> 8) * (1.0 / 16777216.0)));
  }
  return v;
}

volatile double g_sink;

template <class T, class Ours, class Libm>
void bench(const char* name, double lo, double hi, Ours ours, Libm libm) {
  auto in = inputs<T>(lo, hi);
  std::vector<T> out(kN);
  double a = time_ns([&] { run_ours<T>(ours, in.data(), out.data()); });
  g_sink = out[7];
  double b = time_ns([&] { run_libm<T>(libm, in.data(), out.data()); });
  g_sink = out[7];
  std::printf("%-12s %-6s %9.3f %9.3f %7.1fx\n", name, sizeof(T) == 4 ? "float" : "double", a, b, b / a);
}

}  // namespace

#define OURS(fn) [](auto v) { return ta::m::fn(v); }

int main() {
  std::printf("ISA %s (float lanes %d, FMA %s); ns/element, lower is better\n", TA_STR(TA_ISA),
              (int)(sizeof(native<float>) / 4), TA_HAS_FMA ? "yes" : "no");
  std::printf("%-12s %-6s %9s %9s %8s\n", "function", "type", "ours", "glibc", "speedup");
  bench<float>("exp", -80, 80, OURS(exp), [](float x) { return expf(x); });
  bench<float>("expm1", -10, 10, OURS(expm1), [](float x) { return expm1f(x); });
  bench<float>("log", 1e-3, 1e3, OURS(log), [](float x) { return logf(x); });
  bench<float>("log1p", -0.9, 10, OURS(log1p), [](float x) { return log1pf(x); });
  bench<float>("tanh", -5, 5, OURS(tanh), [](float x) { return tanhf(x); });
  bench<float>("erf", -4, 4, OURS(erf), [](float x) { return erff(x); });
  bench<float>("erfc", -4, 10, OURS(erfc), [](float x) { return erfcf(x); });
  bench<float>("sigmoid", -20, 20, OURS(sigmoid), [](float x) { return 1.0f / (1.0f + expf(-x)); });
  bench<float>("softplus", -20, 20, OURS(softplus),
               [](float x) { return std::fmax(x, 0.0f) + log1pf(expf(-std::fabs(x))); });
  bench<float>("log_sigmoid", -20, 20, OURS(log_sigmoid),
               [](float x) { return std::fmin(x, 0.0f) - log1pf(expf(-std::fabs(x))); });
  bench<float>("normcdf", -10, 10, OURS(normcdf),
               [](float x) { return 0.5f * erfcf(x * -0.70710678f); });
  bench<float>("normpdf", -10, 10, OURS(normpdf),
               [](float x) { return expf(-0.5f * x * x) * 0.39894228f; });
  bench<float>("tanhshrink", -5, 5, OURS(tanhshrink), [](float x) { return x - tanhf(x); });

  bench<double>("exp", -700, 700, OURS(exp), [](double x) { return std::exp(x); });
  bench<double>("expm1", -10, 10, OURS(expm1), [](double x) { return std::expm1(x); });
  bench<double>("log", 1e-3, 1e3, OURS(log), [](double x) { return std::log(x); });
  bench<double>("log1p", -0.9, 10, OURS(log1p), [](double x) { return std::log1p(x); });
  bench<double>("tanh", -5, 5, OURS(tanh), [](double x) { return std::tanh(x); });
  bench<double>("erf", -6, 6, OURS(erf), [](double x) { return std::erf(x); });
  bench<double>("erfc", -6, 27, OURS(erfc), [](double x) { return std::erfc(x); });
  bench<double>("sigmoid", -40, 40, OURS(sigmoid), [](double x) { return 1.0 / (1.0 + std::exp(-x)); });
  bench<double>("softplus", -40, 40, OURS(softplus),
                [](double x) { return std::fmax(x, 0.0) + std::log1p(std::exp(-std::fabs(x))); });
  bench<double>("log_sigmoid", -40, 40, OURS(log_sigmoid),
                [](double x) { return std::fmin(x, 0.0) - std::log1p(std::exp(-std::fabs(x))); });
  bench<double>("normcdf", -38, 10, OURS(normcdf),
                [](double x) { return 0.5 * std::erfc(x * -0.7071067811865476); });
  bench<double>("normpdf", -38, 38, OURS(normpdf),
                [](double x) { return std::exp(-0.5 * x * x) * 0.3989422804014327; });
  bench<double>("tanhshrink", -5, 5, OURS(tanhshrink), [](double x) { return x - std::tanh(x); });
  return 0;
}
