/* Softmax + cross-entropy over one chunk of vocabulary columns at a time, as the CPU's crossentropy.c:
 * one block per row; the row's max and sum of exponentials are block reductions in a fixed order
 * (reduce.cuh), the sum in double. */
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/reduce.cuh"

enum { CE_THREADS = 512 };

/* log(e^a + e^b), with a = -inf meaning "nothing yet". */
__device__ static float log_add_exp(float a, float b) {
    if (a == -INFINITY) return b;
    float hi = a > b ? a : b, lo = a > b ? b : a;
    return hi + (float)log1p(exp((double)lo - hi));
}

/* lse (N) combined with each row's log-sum-exp over logits (N, Vc) of row stride ld; tlogit (N) gets
 * the logit of targets in [v0, v0 + Vc). */
__global__ void ce_forward(float *lse, float *tlogit, const float *logits, int ld, const int32_t *targets, int v0,
                           int Vc) {
    __shared__ float smax[32];
    __shared__ double ssum[32];
    int n = blockIdx.x;
    const float *row = logits + (size_t)n * ld;
    float mx = -INFINITY;
    for (int v = threadIdx.x; v < Vc; v += blockDim.x) mx = fmaxf(mx, row[v]);
    mx = anv_block_reduce(mx, smax, anv_op_max());
    double s = 0;
    for (int v = threadIdx.x; v < Vc; v += blockDim.x) s += expf(row[v] - mx);
    s = anv_block_reduce(s, ssum, anv_op_add());
    if (threadIdx.x == 0) {
        lse[n] = log_add_exp(lse[n], mx + (float)log(s));
        int y = targets[n] - v0;
        if (y >= 0 && y < Vc) tlogit[n] = row[y];
    }
}

void anv_cuda_crossentropy_chunk_forward(float *lse, float *tlogit, const float *logits, int ld, const int32_t *targets,
                                         int N, int v0, int Vc) {
    if (N <= 0 || Vc <= 0) return;
    ce_forward<<<N, CE_THREADS, 0, anv_cuda_stream()>>>(lse, tlogit, logits, ld, targets, v0, Vc);
    ANV_CUDA_LAUNCHED("cross-entropy forward");
}

/* In place: logits (N, Vc) become dloss (softmax - onehot) on rows with a target, 0 on ignored rows. */
__global__ void ce_backward(float *logits, int ld, const float *lse, const int32_t *targets, float dloss, int v0,
                            int Vc) {
    int n = blockIdx.x;
    float *row = logits + (size_t)n * ld;
    if (targets[n] < 0) {
        for (int v = threadIdx.x; v < Vc; v += blockDim.x) row[v] = 0.0f;
        return;
    }
    float l = lse[n];
    int y = targets[n] - v0;
    for (int v = threadIdx.x; v < Vc; v += blockDim.x) {
        float g = __fmul_rn(dloss, expf(row[v] - l)); /* rounded before the subtraction, as on the CPU */
        row[v] = v == y ? g - dloss : g;
    }
}

void anv_cuda_crossentropy_chunk_backward(float *logits, int ld, const float *lse, const int32_t *targets, float dloss,
                                          int N, int v0, int Vc) {
    if (N <= 0 || Vc <= 0) return;
    ce_backward<<<N, CE_THREADS, 0, anv_cuda_stream()>>>(logits, ld, lse, targets, dloss, v0, Vc);
    ANV_CUDA_LAUNCHED("cross-entropy backward");
}

struct row_loss {
    const float *lse, *tlogit;
    const int32_t *targets;
    __device__ double operator()(size_t n) const { return targets[n] >= 0 ? (double)lse[n] - tlogit[n] : 0.0; }
};

double anv_cuda_crossentropy_loss_sum(const float *lse, const float *tlogit, const int32_t *targets, int N) {
    if (N <= 0) return 0;
    return anv_cuda_reduce((size_t)N, row_loss{lse, tlogit, targets}, "cross-entropy loss");
}
