/* RMSNorm over the last axis (Llama): out = inp * rstd * w, rstd = 1 / sqrt(mean(inp^2) + eps). */
#include "anvil/kernels.h"
#include "kernels/cpu/isa.h" /* the symbol names of this ISA's copy */

#include <math.h>

void anv_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, float eps, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
        float rs = (float)(1.0 / sqrt(ss / C + eps));
        float *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = x[c] * rs * w[c];
        if (rstd) rstd[n] = rs;
    }
}

/* With xhat = x rstd and g = dout * w:  dinp += rstd (g - xhat mean(g xhat)),  dw += dout xhat.
 * dinp goes row by row; dw column slice by column slice (each thread sums its columns over all rows in
 * order, so the result does not depend on the thread count). */
void anv_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                          const float *rstd, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        float rs = rstd[n];
        double sgx = 0;
        for (int c = 0; c < C; c++) sgx += (double)(d[c] * w[c]) * (x[c] * rs);
        float mgx = (float)(sgx / C);
        float *di = dinp + (size_t)n * C;
        for (int c = 0; c < C; c++) di[c] += rs * (d[c] * w[c] - x[c] * rs * mgx);
    }
    if (!dw) return;
    enum { CB = 64 };
    int nb = (C + CB - 1) / CB;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nb; blk++) {
        int c0 = blk * CB, c1 = c0 + CB < C ? c0 + CB : C;
        double aw[CB] = {0};
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
            float rs = rstd[n];
            for (int c = c0; c < c1; c++) aw[c - c0] += d[c] * (x[c] * rs);
        }
        for (int c = c0; c < c1; c++) dw[c] += (float)aw[c - c0];
    }
}
