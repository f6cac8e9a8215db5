/* Launches the RoPE kernel of rope.cuh: the forward rotates by the angle, the backward by its opposite. */
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/rope.cuh"

static void rotate(float *qkv, const int32_t *starts, const float *inv_freq, int B, int T, int pos, int NH, int NKV,
                   int hs, float sign, const char *what) {
    size_t n = (size_t)B * T * (hs / 2);
    if (n == 0) return;
    rope::rotate<<<anv_cuda_blocks(n), ANV_CUDA_THREADS, 0, anv_cuda_stream()>>>(
        qkv, starts, inv_freq, B, T, pos, NH + NKV, (NH + 2 * NKV) * hs, hs, sign);
    ANV_CUDA_LAUNCHED(what);
}

void anv_cuda_rope_forward(float *qkv, const int32_t *starts, const float *inv_freq, int B, int T, int pos, int NH,
                           int NKV, int hs) {
    rotate(qkv, starts, inv_freq, B, T, pos, NH, NKV, hs, 1.0f, "rope forward");
}

void anv_cuda_rope_backward(float *dqkv, const int32_t *starts, const float *inv_freq, int B, int T, int pos, int NH,
                            int NKV, int hs) {
    rotate(dqkv, starts, inv_freq, B, T, pos, NH, NKV, hs, -1.0f, "rope backward");
}
