/* The table of one instruction set's copy of the CPU kernels (internal; see isa.h). */
#ifndef ANVIL_KERNELS_CPU_DISPATCH_H
#define ANVIL_KERNELS_CPU_DISPATCH_H

#include "anvil/kernels.h"
#include "kernels/cpu/gemm.h"
#include "kernels/table.h"

typedef anv_kernel_table_t anv_cpu_kernels_t;

extern const anv_cpu_kernels_t anv_cpu_kernels_portable;
#ifdef ANVIL_HAVE_ISA_X86
extern const anv_cpu_kernels_t anv_cpu_kernels_avx2, anv_cpu_kernels_avx512;
#endif

#endif
