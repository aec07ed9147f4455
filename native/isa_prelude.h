// System and project headers for native/isa_*.cc, included BEFORE `#pragma GCC target` so that library code
// is compiled for the baseline ISA; isa_body.h then expands the kernel headers inside a per-ISA namespace.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "common.h"
#include "dropout.h"
#include "kernels.h"
#include "threads.h"
