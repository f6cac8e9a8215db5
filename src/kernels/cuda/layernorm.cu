/* LayerNorm over the last axis, eps 1e-5 (GPT-2), as the CPU's layernorm.c: one warp per row, the
 * row's sums in double in a fixed order (lane-strided, then the warp butterfly). */
#include "kernels/cuda/colsum.cuh"
#include "kernels/cuda/cuda_kernels.h"

enum { LN_WARPS = 8 };
#define LN_EPS 1e-5

/* out (N, C), mean (N), rstd (N) (either may be NULL) from inp (N, C), w (C), b (C). */
__global__ void ln_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                           int N, int C) {
    int row = blockIdx.x * LN_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    const float *x = inp + (size_t)row * C;
    double s = 0;
    for (int c = lane; c < C; c += 32) s += x[c];
    double m = anv_warp_sum(s) / C;
    double v = 0;
    for (int c = lane; c < C; c += 32) v += (x[c] - m) * (x[c] - m);
    v = anv_warp_sum(v);
    float rs = (float)(1.0 / sqrt(v / C + LN_EPS)), mf = (float)m;
    float *o = out + (size_t)row * C;
    for (int c = lane; c < C; c += 32) o[c] = (x[c] - mf) * rs * w[c] + b[c];
    if (lane == 0) {
        if (mean) mean[row] = mf;
        if (rstd) rstd[row] = rs;
    }
}

void anv_cuda_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                                int N, int C) {
    if (N <= 0 || C <= 0) return;
    ln_forward<<<(N + LN_WARPS - 1) / LN_WARPS, LN_WARPS * 32, 0, anv_cuda_stream()>>>(out, mean, rstd, inp, w, b, N,
                                                                                       C);
    ANV_CUDA_LAUNCHED("layernorm forward");
}

/* dinp (N, C) += rstd (g - mean(g) - xhat mean(g xhat)) with g = dout * w, xhat = (x - mean) rstd. */
__global__ void ln_backward_dinp(float *dinp, const float *dout, const float *inp, const float *w, const float *mean,
                                 const float *rstd, int N, int C) {
    int row = blockIdx.x * LN_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    const float *x = inp + (size_t)row * C, *d = dout + (size_t)row * C;
    float m = mean[row], rs = rstd[row];
    double sg = 0, sgx = 0;
    for (int c = lane; c < C; c += 32) {
        float g = d[c] * w[c];
        sg += g;
        sgx += (double)g * ((x[c] - m) * rs);
    }
    float mg = (float)(anv_warp_sum(sg) / C), mgx = (float)(anv_warp_sum(sgx) / C);
    float *di = dinp + (size_t)row * C;
    for (int c = lane; c < C; c += 32) {
        float xhat = (x[c] - m) * rs;
        di[c] += rs * (d[c] * w[c] - mg - xhat * mgx);
    }
}

/* value(n, c) = dout * xhat (for dw) or dout (for db). */
struct ln_param_grad {
    const float *dout, *inp, *mean, *rstd;
    int C, with_xhat;
    __device__ double operator()(int n, int c) const {
        size_t i = (size_t)n * C + c;
        return with_xhat ? dout[i] * ((inp[i] - mean[n]) * rstd[n]) : dout[i];
    }
};

/* dw and db by the deterministic column sums of colsum.cuh (no atomics). */
void anv_cuda_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                                 const float *mean, const float *rstd, int N, int C) {
    if (N <= 0 || C <= 0) return;
    ln_backward_dinp<<<(N + LN_WARPS - 1) / LN_WARPS, LN_WARPS * 32, 0, anv_cuda_stream()>>>(dinp, dout, inp, w, mean,
                                                                                             rstd, N, C);
    ANV_CUDA_LAUNCHED("layernorm backward");
    if (!dw) return;
    anv_cuda_colsum(dw, N, C, ln_param_grad{dout, inp, mean, rstd, C, 1}, "layernorm backward dw");
    anv_cuda_colsum(db, N, C, ln_param_grad{dout, inp, mean, rstd, C, 0}, "layernorm backward db");
}
