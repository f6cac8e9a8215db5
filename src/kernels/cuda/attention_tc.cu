/* Launches the tensor-core attention kernels of attention_tc.cuh (the bf16 precision's attention). */
#include "kernels/cuda/attention_tc.cuh"
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_kernels.h"

int anv_cuda_attention_tc_head(int C, int NH) {
    int hs = NH > 0 ? C / NH : 0;
    return hs * NH == C && (hs == 32 || hs == 64 || hs == 128) ? hs : 0;
}

/* Launches kernel over grid (ceil(T / 64), B * heads) with `smem` bytes of dynamic shared memory, after
 * raising the kernel's limit to that (a host-side call of a microsecond or so, made on every launch so
 * that it holds on whatever device is current). */
template <class Kernel, class... Args>
static void launch(Kernel kernel, int smem, int B, int T, int heads, const char *what, Args... args) {
    if (anv_cuda_check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem), what) != 0) {
        anv_kernel_failed();
        return;
    }
    dim3 grid((T + att_tc::ROWS - 1) / att_tc::ROWS, B * heads);
    kernel<<<grid, att_tc::THREADS, smem, anv_cuda_stream()>>>(args...);
    ANV_CUDA_LAUNCHED(what);
}

template <int HS>
static void forward(float *out, float *lse, const float *qkv, const int32_t *starts, int B, int T, int C, int NH,
                    int NKV) {
    launch(att_tc::forward<HS>, att_tc::dims<HS>::forward_bytes, B, T, NH, "attention forward (tensor cores)", out, lse,
           qkv, starts, T, C, NH, NKV);
}

template <int HS>
static void backward(float *dqkv, const float *dout, const float *qkv, const float *lse, const float *delta,
                     const int32_t *starts, int B, int T, int C, int NH, int NKV) {
    launch(att_tc::backward_dq<HS>, att_tc::dims<HS>::dq_bytes, B, T, NH, "attention backward dq (tensor cores)", dqkv,
           dout, qkv, lse, delta, starts, T, C, NH, NKV);
    launch(att_tc::backward_dkv<HS>, att_tc::dims<HS>::dkv_bytes, B, T, NKV, "attention backward dk dv (tensor cores)",
           dqkv, dout, qkv, lse, delta, starts, T, C, NH, NKV);
}

void anv_cuda_attention_tc_forward(float *out, float *lse, const float *qkv, const int32_t *starts, int B, int T, int C,
                                   int NH, int NKV) {
    switch (anv_cuda_attention_tc_head(C, NH)) {
    case 32:
        forward<32>(out, lse, qkv, starts, B, T, C, NH, NKV);
        break;
    case 64:
        forward<64>(out, lse, qkv, starts, B, T, C, NH, NKV);
        break;
    case 128:
        forward<128>(out, lse, qkv, starts, B, T, C, NH, NKV);
        break;
    default:
        break;
    }
}

void anv_cuda_attention_tc_backward(float *dqkv, const float *dout, const float *qkv, const float *lse,
                                    const float *delta, const int32_t *starts, int B, int T, int C, int NH, int NKV) {
    switch (anv_cuda_attention_tc_head(C, NH)) {
    case 32:
        backward<32>(dqkv, dout, qkv, lse, delta, starts, B, T, C, NH, NKV);
        break;
    case 64:
        backward<64>(dqkv, dout, qkv, lse, delta, starts, B, T, C, NH, NKV);
        break;
    case 128:
        backward<128>(dqkv, dout, qkv, lse, delta, starts, B, T, C, NH, NKV);
        break;
    default:
        break;
    }
}
