/* SwiGLU, Llama's MLP activation: out = silu(gate) * up over rows of gate | up. */
#include "anvil/kernels.h"
#include "kernels/cpu/isa.h" /* the symbol names of this ISA's copy */
#include "kernels/cpu/vmath.h"

void anv_swiglu_forward(float *out, const float *inp, int N, int F) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *g = inp + (size_t)n * 2 * F, *u = g + F;
        float *o = out + (size_t)n * F;
        for (int i = 0; i < F; i++) o[i] = g[i] / (1.0f + anv_vexpf(-g[i])) * u[i];
    }
}

/* With s = sigmoid(g): d gate = dout * up * s (1 + g (1 - s)),  d up = dout * g s. */
void anv_swiglu_backward(float *dinp, const float *inp, const float *dout, int N, int F) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *g = inp + (size_t)n * 2 * F, *u = g + F, *d = dout + (size_t)n * F;
        float *dg = dinp + (size_t)n * 2 * F, *du = dg + F;
        for (int i = 0; i < F; i++) {
            float s = 1.0f / (1.0f + anv_vexpf(-g[i]));
            dg[i] = d[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
            du[i] = d[i] * g[i] * s;
        }
    }
}
