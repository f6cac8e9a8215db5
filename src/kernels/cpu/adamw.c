/* The AdamW update, element-wise (see kernels.h). */
#include "kernels/cpu/isa.h" /* first: renames the kernels for this ISA's copy */
#include "anvil/kernels.h"

#include <math.h>

void anv_adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2,
                      float eps, float wd, float bc1, float bc2_sqrt) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float mi = beta1 * m[i] + (1.0f - beta1) * g[i];
        float vi = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i];
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / bc1, denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] -= lr * (mhat / denom + wd * p[i]);
    }
}
