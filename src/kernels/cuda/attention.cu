/* Launches the fp32 attention kernels of attention.cuh, the tensor-core ones of attention_tc.cu in
 * the bf16 precision, and the decoding kernels of attention_decode.cuh. */
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attention_decode.cuh"
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_kernels.h"

/* One warp per (b, h, t) row: delta (B, NH, T) = sum over the head's dimensions of dout * out. */
__global__ void attention_delta(float *delta, const float *out, const float *dout, int B, int T, int C, int NH) {
    size_t row = (size_t)blockIdx.x * att_fp32::WARPS + threadIdx.x / 32;
    if (row >= (size_t)B * NH * T) return;
    int hs = C / NH, lane = threadIdx.x % 32;
    size_t bh = row / T, t = row % T, b = bh / NH, h = bh % NH;
    size_t off = (b * T + t) * C + h * hs;
    double d = 0;
    for (int j = lane; j < hs; j += 32) d += (double)out[off + j] * dout[off + j];
    d = anv_warp_sum(d);
    if (lane == 0) delta[row] = (float)d;
}

/* HS for a head size: 32, 64 or 128; 0 (with an error, logged) when larger, or when NKV does not divide
 * NH. */
static int head_tile(int C, int NH, int NKV, const char *what) {
    int hs = NH > 0 ? C / NH : 0;
    if (NKV < 1 || NH % NKV != 0) {
        anv_error("%s: %d key/value heads do not divide %d heads", what, NKV, NH);
        anv_kernel_failed();
        return 0;
    }
    if (hs >= 1 && hs <= att_fp32::MAX_HS && hs * NH == C) return hs <= 32 ? 32 : hs <= 64 ? 64 : 128;
    anv_error("%s: head size %d (C %d, %d heads) is not supported on the GPU (1 to %d, C = heads x size)", what, hs, C,
              NH, att_fp32::MAX_HS);
    anv_kernel_failed();
    return 0;
}

size_t anv_cuda_attention_scratch_floats(int T) {
    (void)T;
    return 0; /* the kernels keep their tiles in shared memory */
}

/* The bf16 precision takes the tensor-core kernels where the head size allows. */
static int use_tensor_cores(int C, int NH) {
    return anv_matmul_precision() == ANV_PRECISION_BF16 && anv_cuda_attention_tc_head(C, NH) > 0;
}

void anv_cuda_attention_forward(float *out, float *lse, float *scratch, const float *qkv, const int32_t *starts, int B,
                                int T, int C, int NH, int NKV) {
    (void)scratch;
    if (B <= 0 || T <= 0) return;
    int HS = head_tile(C, NH, NKV, "attention forward");
    if (!HS) return;
    if (use_tensor_cores(C, NH)) {
        anv_cuda_attention_tc_forward(out, lse, qkv, starts, B, T, C, NH, NKV);
        return;
    }
    dim3 grid((T + att_fp32::WARPS - 1) / att_fp32::WARPS, B * NH);
    cudaStream_t st = anv_cuda_stream();
    if (HS == 32)
        att_fp32::forward<32><<<grid, att_fp32::WARPS * 32, 0, st>>>(out, lse, qkv, starts, T, C, NH, NKV);
    else if (HS == 64)
        att_fp32::forward<64><<<grid, att_fp32::WARPS * 32, 0, st>>>(out, lse, qkv, starts, T, C, NH, NKV);
    else
        att_fp32::forward<128><<<grid, att_fp32::WARPS * 32, 0, st>>>(out, lse, qkv, starts, T, C, NH, NKV);
    ANV_CUDA_LAUNCHED("attention forward");
}

/* The backward's passes for one head tile size: dQ a block per query rows of a head, dK/dV a block per
 * key rows of a key/value head. */
template <int HS>
static void backward_passes(float *dqkv, const float *dout, const float *qkv, const float *lse, const float *delta,
                            const int32_t *starts, int B, int T, int C, int NH, int NKV) {
    unsigned row_blocks = (T + att_fp32::WARPS - 1) / att_fp32::WARPS;
    cudaStream_t st = anv_cuda_stream();
    att_fp32::backward_dq<HS>
        <<<dim3(row_blocks, B * NH), att_fp32::WARPS * 32, 0, st>>>(dqkv, dout, qkv, lse, delta, starts, T, C, NH, NKV);
    att_fp32::backward_dkv<HS><<<dim3(row_blocks, B * NKV), att_fp32::WARPS * 32, 0, st>>>(dqkv, dout, qkv, lse, delta,
                                                                                           starts, T, C, NH, NKV);
}

void anv_cuda_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *out,
                                 const float *lse, const int32_t *starts, int B, int T, int C, int NH, int NKV) {
    (void)scratch;
    if (B <= 0 || T <= 0) return;
    int HS = head_tile(C, NH, NKV, "attention backward");
    if (!HS) return;
    size_t rows = (size_t)B * NH * T;
    float *delta = (float *)anv_cuda_scratch(sizeof(float) * rows, "attention backward");
    if (!delta) return;
    attention_delta<<<(unsigned)((rows + att_fp32::WARPS - 1) / att_fp32::WARPS), att_fp32::WARPS * 32, 0,
                      anv_cuda_stream()>>>(delta, out, dout, B, T, C, NH);
    if (use_tensor_cores(C, NH))
        anv_cuda_attention_tc_backward(dqkv, dout, qkv, lse, delta, starts, B, T, C, NH, NKV);
    else if (HS == 32)
        backward_passes<32>(dqkv, dout, qkv, lse, delta, starts, B, T, C, NH, NKV);
    else if (HS == 64)
        backward_passes<64>(dqkv, dout, qkv, lse, delta, starts, B, T, C, NH, NKV);
    else
        backward_passes<128>(dqkv, dout, qkv, lse, delta, starts, B, T, C, NH, NKV);
    ANV_CUDA_LAUNCHED("attention backward");
}

void anv_cuda_attention_decode(float *out, float *kc, float *vc, const float *qkv, int pos, int n, int C, int NH,
                               int NKV) {
    if (n <= 0) return;
    int HS = head_tile(C, NH, NKV, "attention decode");
    if (!HS) return;
    int KC = NKV * (C / NH);
    cudaStream_t st = anv_cuda_stream();
    att_dec::append_kv<<<anv_cuda_blocks((size_t)n * KC), ANV_CUDA_THREADS, 0, st>>>(kc, vc, qkv, pos, n, C, KC);
    dim3 grid(n, NH);
    if (HS == 32)
        att_dec::attend<1><<<grid, att_dec::THREADS, att_dec::smem_bytes(1), st>>>(out, kc, vc, qkv, pos, C, NH, NKV);
    else if (HS == 64)
        att_dec::attend<2><<<grid, att_dec::THREADS, att_dec::smem_bytes(2), st>>>(out, kc, vc, qkv, pos, C, NH, NKV);
    else
        att_dec::attend<4><<<grid, att_dec::THREADS, att_dec::smem_bytes(4), st>>>(out, kc, vc, qkv, pos, C, NH, NKV);
    ANV_CUDA_LAUNCHED("attention decode");
}
