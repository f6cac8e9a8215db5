/* Token embeddings, plus learned position embeddings where the model has them (GPT-2).
 *
 * The backward pass scatters rows of dout into dwte at the token ids, where a token may repeat. It
 * uses no atomics: a first kernel links each position to the next position with the same token and
 * marks each token's first position (every thread compares its token with all others, staged through
 * shared memory: O((B T)^2) comparisons, about 0.1 ms for B T = 8192); a second kernel gives each
 * first position a block whose threads own columns and walk that token's positions in order, adding
 * into dwte. Each dwte element is then the old value plus the rows of its token in position order:
 * the same additions in the same order as the CPU, so the same bits, on every run. dwpe (one row per
 * position, summed over the batch; NULL for rotary models) needs no links where each row is one
 * sequence: a thread per (t, column) adds b = 0, 1, ...; in packed rows (starts, kernel_list.h) a thread
 * per (position, column) walks the tokens in order, skipping those that cannot be at its position, and
 * adds those that are. */
#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_kernels.h"

/* The position of token bt of a (B, T) batch. */
__device__ inline size_t position(const int32_t *starts, size_t bt, int T) {
    return bt % T - (starts ? (size_t)starts[bt] : 0);
}

/* out (B, T, C) = wte[tokens[b, t]] + wpe[position], or wte[tokens[b, t]] where wpe is NULL */
__global__ void embedding_forward(float *out, const int32_t *tokens, const int32_t *starts, const float *wte,
                                  const float *wpe, int T, int C, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t bt = i / C, c = i % C;
        float e = wte[(size_t)tokens[bt] * C + c];
        out[i] = wpe ? e + wpe[position(starts, bt, T) * C + c] : e;
    }
}

void anv_cuda_embedding_forward(float *out, const int32_t *tokens, const int32_t *starts, const float *wte,
                                const float *wpe, int B, int T, int C) {
    size_t n = (size_t)B * T * C;
    if (n == 0) return;
    embedding_forward<<<anv_cuda_blocks(n), ANV_CUDA_THREADS, 0, anv_cuda_stream()>>>(out, tokens, starts, wte, wpe, T,
                                                                                      C, n);
    ANV_CUDA_LAUNCHED("embedding forward");
}

enum { LINK_TILE = 1024 };

/* next (N): the next position with the same token, or -1; first (N): 1 where no earlier position has
 * the token. */
__global__ void embedding_links(int *next, int *first, const int32_t *tokens, int N) {
    __shared__ int32_t tile[LINK_TILE];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    int32_t tok = i < N ? tokens[i] : 0;
    int nx = -1, fst = 1;
    for (int j0 = 0; j0 < N; j0 += LINK_TILE) {
        int len = N - j0 < LINK_TILE ? N - j0 : LINK_TILE;
        __syncthreads();
        for (int k = threadIdx.x; k < len; k += blockDim.x) tile[k] = tokens[j0 + k];
        __syncthreads();
        for (int k = 0; k < len; k++) {
            if (tile[k] != tok) continue;
            int j = j0 + k;
            if (j < i)
                fst = 0;
            else if (j > i && nx < 0)
                nx = j;
        }
    }
    if (i < N) {
        next[i] = nx;
        first[i] = fst;
    }
}

/* For each first position i (one block each), dwte[tokens[i]] += the dout rows of the token's
 * positions in order. */
__global__ void embedding_dwte(float *dwte, const float *dout, const int32_t *tokens, const int *next, const int *first,
                               int C) {
    int i = blockIdx.x;
    if (!first[i]) return;
    float *e = dwte + (size_t)tokens[i] * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float acc = e[c];
        for (int j = i; j >= 0; j = next[j]) acc += dout[(size_t)j * C + c];
        e[c] = acc;
    }
}

/* dwpe (T, C) += sum over b of dout[b, t] */
__global__ void embedding_dwpe(float *dwpe, const float *dout, int B, int T, int C) {
    size_t n = (size_t)T * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float acc = dwpe[i];
        for (int b = 0; b < B; b++) acc += dout[(size_t)b * n + i];
        dwpe[i] = acc;
    }
}

/* Packed rows: dwpe[p] (T, C) += dout[b, t] over the tokens at position p, in token order. */
__global__ void embedding_dwpe_packed(float *dwpe, const float *dout, const int32_t *starts, int B, int T, int C) {
    size_t n = (size_t)T * C, N = (size_t)B * T;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t p = i / C, c = i % C;
        float acc = dwpe[i];
        for (size_t bt = p; bt < N;) { /* below p, no token before the one p - position(bt) on is at p */
            size_t at = position(starts, bt, T);
            if (at == p) acc += dout[bt * C + c];
            bt += at < p ? p - at : 1;
        }
        dwpe[i] = acc;
    }
}

void anv_cuda_embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens,
                                 const int32_t *starts, int B, int T, int C) {
    int N = B * T;
    if (N <= 0 || C <= 0) return;
    int *links = (int *)anv_cuda_scratch(sizeof(int) * 2 * (size_t)N, "embedding backward");
    if (!links) return;
    cudaStream_t st = anv_cuda_stream();
    embedding_links<<<(N + ANV_CUDA_THREADS - 1) / ANV_CUDA_THREADS, ANV_CUDA_THREADS, 0, st>>>(links, links + N,
                                                                                                tokens, N);
    embedding_dwte<<<N, 128, 0, st>>>(dwte, dout, tokens, links, links + N, C);
    if (dwpe && starts)
        embedding_dwpe_packed<<<anv_cuda_blocks((size_t)T * C), ANV_CUDA_THREADS, 0, st>>>(dwpe, dout, starts, B, T, C);
    else if (dwpe)
        embedding_dwpe<<<anv_cuda_blocks((size_t)T * C), ANV_CUDA_THREADS, 0, st>>>(dwpe, dout, B, T, C);
    ANV_CUDA_LAUNCHED("embedding backward");
}
