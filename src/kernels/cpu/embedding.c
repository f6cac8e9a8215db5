/* Token embeddings, plus learned position embeddings where the model has them (GPT-2). */
#include "anvil/kernels.h"
#include "kernels/cpu/isa.h" /* the symbol names of this ISA's copy */

/* The position of token bt of a (B, T) batch (packed rows: kernel_list.h). */
static inline int position(const int32_t *starts, int bt, int T) { return bt % T - (starts ? starts[bt] : 0); }

/* out (B, T, C) = wte[tokens] + wpe[position] (wpe may be NULL) */
void anv_embedding_forward(float *out, const int32_t *tokens, const int32_t *starts, const float *wte, const float *wpe,
                           int B, int T, int C) {
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        const float *e = wte + (size_t)tokens[bt] * C;
        float *o = out + (size_t)bt * C;
        if (!wpe) {
            for (int c = 0; c < C; c++) o[c] = e[c];
            continue;
        }
        const float *p = wpe + (size_t)position(starts, bt, T) * C;
        for (int c = 0; c < C; c++) o[c] = e[c] + p[c];
    }
}

/* Scatter-add without atomics: each thread owns a slice of channels and visits every token in order,
 * so the sums do not depend on the thread count. */
void anv_embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens, const int32_t *starts,
                            int B, int T, int C) {
    enum { CB = 32 };
    int nb = (C + CB - 1) / CB;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nb; blk++) {
        int c0 = blk * CB, c1 = c0 + CB < C ? c0 + CB : C;
        for (int bt = 0; bt < B * T; bt++) {
            const float *d = dout + (size_t)bt * C;
            float *e = dwte + (size_t)tokens[bt] * C;
            for (int c = c0; c < c1; c++) e[c] += d[c];
            if (!dwpe) continue;
            float *p = dwpe + (size_t)position(starts, bt, T) * C;
            for (int c = c0; c < c1; c++) p[c] += d[c];
        }
    }
}
