/* Warp reductions (internal, C++), in a header that tests/gpu/cuda_emu.h can compile, so that the
 * kernels kept in headers use them on the GPU and in the emulation alike: xor butterflies, so every
 * lane ends with the same bits (the additions pair the same values in the same tree on every lane,
 * and IEEE addition is commutative). */
#ifndef ANVIL_KERNELS_CUDA_WARP_CUH
#define ANVIL_KERNELS_CUDA_WARP_CUH

#ifndef ANVIL_CUDA_EMULATION
#include <cuda_runtime.h>
#endif

template <class T> __device__ inline T anv_warp_sum(T v) {
    for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ inline float anv_warp_max(float v) {
    for (int o = 16; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

#endif
