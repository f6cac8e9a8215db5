/* This instruction set's copy of the kernels, as a table for dispatch.c (compiled once per ISA). */
#include "kernels/cpu/dispatch.h"
#include "kernels/cpu/isa.h"

const anv_cpu_kernels_t anv_cpu_kernels = {
    ANV_ISA_LABEL,
    /* block_floats, 64 MiB: large GEMMs that still stay near the caches */
    (size_t)1 << 24,
#define ANV_KERNEL(ret, name, params, args) anv_##name,
#include "anvil/kernel_list.h"
};
