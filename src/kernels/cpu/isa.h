/* Per-instruction-set copies of the CPU kernels (internal).
 *
 * CMake compiles the kernel sources (ANVIL_KERNEL_SOURCES) more than once: as part of the library for
 * the build's baseline target ("portable"), and on x86-64 again with -march=x86-64-v3 (AVX2 + FMA,
 * ANVIL_ISA_AVX2 defined) and -march=x86-64-v4 -mavx512bf16 (AVX-512, ANVIL_ISA_AVX512). Included
 * by each of those sources, this gives every kernel the symbol name anv_<name>_<isa> (an asm label on
 * its declaration, which any order of includes keeps) so the copies coexist in one binary; dispatch.c
 * defines the public names, which call the copy chosen at start. */
#ifndef ANVIL_KERNELS_CPU_ISA_H
#define ANVIL_KERNELS_CPU_ISA_H

#if defined(ANVIL_ISA_AVX512)
#define ANV_ISA_SUFFIX _avx512
#define ANV_ISA_LABEL "avx512"
#elif defined(ANVIL_ISA_AVX2)
#define ANV_ISA_SUFFIX _avx2
#define ANV_ISA_LABEL "avx2"
#else
#define ANV_ISA_SUFFIX _portable
#define ANV_ISA_LABEL "portable"
#endif
#define ANV_ISA_CAT2(a, b) a##b
#define ANV_ISA_CAT(a, b) ANV_ISA_CAT2(a, b)
#define ANV_ISA_NAME(name) ANV_ISA_CAT(name, ANV_ISA_SUFFIX)

#define ANV_ISA_STR2(x) #x
#define ANV_ISA_STR(x) ANV_ISA_STR2(x)

/* Every kernel of kernel_list.h under its name for this copy: the definitions and calls that follow in
 * this file use the symbol anv_<name>_<isa>. */
#include "kernels/cpu/gemm.h"
#define ANV_KERNEL(ret, name, params, args) ret anv_##name params __asm__("anv_" #name ANV_ISA_STR(ANV_ISA_SUFFIX));
#include "anvil/kernel_list.h"

#define anv_cpu_kernels ANV_ISA_NAME(anv_cpu_kernels)

#endif
