/* The AdamW update of a parameter block's segments (see kernels.h): one parallel region, each segment's
 * floats shared out statically among the threads (no barrier between segments: every float is
 * independent). */
#include "anvil/kernels.h"
#include "kernels/cpu/isa.h" /* the symbol names of this ISA's copy */

#include <math.h>

void anv_adamw_update(float *p, const float *g, float *m, float *v, size_t lo, size_t n,
                      const anv_adamw_segments_t *segs, float lr, float beta1, float beta2, float eps, float wd,
                      float bc1, float bc2_sqrt) {
#pragma omp parallel
    for (int s = 0; s < segs->count; s++) {
        size_t a = segs->start[s] > lo ? segs->start[s] : lo, b = segs->end[s] < lo + n ? segs->end[s] : lo + n;
        if (a >= b) continue; /* the same for every thread */
        float wds = segs->decay[s] ? wd : 0.0f;
#pragma omp for schedule(static) nowait
        for (size_t i = a - lo; i < b - lo; i++) {
            float mi = beta1 * m[i] + (1.0f - beta1) * g[i];
            float vi = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i];
            m[i] = mi;
            v[i] = vi;
            float mhat = mi / bc1, denom = sqrtf(vi) / bc2_sqrt + eps;
            p[i] -= lr * (mhat / denom + wds * p[i]);
        }
    }
}
