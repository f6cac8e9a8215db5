/* The CUDA backend as a kernel table for src/kernels/cpu/dispatch.c. */
#include "kernels/cuda/cuda_kernels.h"

const anv_kernel_table_t anv_cuda_kernels = {
    "cuda",
    /* block_floats, 512 MiB: fewer and larger GEMMs, fewer additions into the head's gradient */
    (size_t)1 << 27,
#define ANV_KERNEL(ret, name, params, args) anv_cuda_##name,
#include "anvil/kernel_list.h"
};
