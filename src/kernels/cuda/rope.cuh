/* Rotary position embeddings in Hugging Face's rotate_half convention, in place on the query and key
 * heads of a fused qkv, as the CPU's rope.c: the kernel, in a header so that tests/gpu/test_cuda_emu.cc
 * runs the same source on the CPU; rope.cu launches it. */
#ifndef ANVIL_KERNELS_CUDA_ROPE_CUH
#define ANVIL_KERNELS_CUDA_ROPE_CUH

#ifndef ANVIL_CUDA_EMULATION
#include <cuda_runtime.h>
#endif
#include <stddef.h>

namespace rope {

/* Grid-stride over (B T, hs / 2), so that neighbouring threads touch neighbouring floats: for row bt of
 * qkv (B T, (NH + 2 NKV) hs) at position p = pos + bt % T - starts[bt] (starts NULL: 0; packed rows,
 * kernel_list.h) and frequency i, with a = p inv_freq[i] rounded to float, each of the `heads` = NH + NKV query and key
 * heads x becomes x[i] = x[i] cos a - x[i + hs/2] sign sin a;  x[i + hs/2] = x[i + hs/2] cos a + x[i] sign sin a (sign
 * -1: the backward's rotation by -a). sincosf, not the fast __sincosf: a grows with the position. */
__global__ void rotate(float *qkv, const int *starts, const float *inv_freq, int B, int T, int pos, int heads, int row,
                       int hs, float sign) {
    int half = hs / 2;
    size_t n = (size_t)B * T * half, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += stride) {
        size_t bt = idx / half;
        int i = (int)(idx % half);
        float a = (float)(pos + (int)(bt % T) - (starts ? starts[bt] : 0)) * inv_freq[i], s, c;
        sincosf(a, &s, &c);
        s *= sign;
        float *x = qkv + bt * row + i;
        for (int h = 0; h < heads; h++, x += hs) {
            float x1 = x[0], x2 = x[half];
            x[0] = x1 * c - x2 * s;
            x[half] = x2 * c + x1 * s;
        }
    }
}

} /* namespace rope */

#endif
