/* LayerNorm over the last axis, eps 1e-5 (GPT-2). */
#include "anvil/kernels.h"
#include "kernels/cpu/isa.h" /* the symbol names of this ISA's copy */

#include <math.h>

#define LN_EPS 1e-5

void anv_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                           int N, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        double s = 0;
        for (int c = 0; c < C; c++) s += x[c];
        double m = s / C;
        double v = 0;
        for (int c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
        float rs = (float)(1.0 / sqrt(v / C + LN_EPS));
        float mf = (float)m;
        float *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = (x[c] - mf) * rs * w[c] + b[c];
        if (mean) mean[n] = mf;
        if (rstd) rstd[n] = rs;
    }
}

/* With xhat = (x - mean) rstd and g = dout * w:
 *   dinp += rstd (g - mean(g) - xhat mean(g xhat)),  dw += dout xhat,  db += dout.
 * dinp goes row by row; dw and db column slice by column slice (each thread sums its columns over all
 * rows in order, so the result does not depend on the thread count). */
void anv_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                            const float *mean, const float *rstd, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        float m = mean[n], rs = rstd[n];
        double sg = 0, sgx = 0;
        for (int c = 0; c < C; c++) {
            float g = d[c] * w[c];
            sg += g;
            sgx += (double)g * ((x[c] - m) * rs);
        }
        float mg = (float)(sg / C), mgx = (float)(sgx / C);
        float *di = dinp + (size_t)n * C;
        for (int c = 0; c < C; c++) {
            float xhat = (x[c] - m) * rs;
            di[c] += rs * (d[c] * w[c] - mg - xhat * mgx);
        }
    }
    if (!dw) return;
    enum { CB = 64 };
    int nb = (C + CB - 1) / CB;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nb; blk++) {
        int c0 = blk * CB, c1 = c0 + CB < C ? c0 + CB : C;
        double aw[CB] = {0}, ab[CB] = {0};
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
            float m = mean[n], rs = rstd[n];
            for (int c = c0; c < c1; c++) {
                aw[c - c0] += d[c] * ((x[c] - m) * rs);
                ab[c - c0] += d[c];
            }
        }
        for (int c = c0; c < c1; c++) {
            dw[c] += (float)aw[c - c0];
            db[c] += (float)ab[c - c0];
        }
    }
}
