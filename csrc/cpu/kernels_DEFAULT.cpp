// Baseline build: whatever the compiler targets by default (SSE2 on x86-64).
#define TA_ISA DEFAULT
#include "kernels_impl.h"
#include "rows_impl.h"
