/* Vectorisable exp and tanh for the CPU kernels (internal). libm's expf/tanhf are calls the compiler
 * cannot vectorise; these are straight-line code it can. Accuracy: exp within about 2 ulp over
 * [-87, 88] (inputs are clamped to that range), tanh within about 1e-7 absolute. */
#ifndef ANVIL_KERNELS_CPU_VMATH_H
#define ANVIL_KERNELS_CPU_VMATH_H

#include <stdint.h>
#include <string.h>

/* e^x = 2^n e^r with n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2]; e^r by its Taylor
 * polynomial to degree 7 (Horner), 2^n built in the exponent bits. */
static inline float anv_vexpf(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float t = x * 1.44269504088896341f + shifter;
    float n = t - shifter;
    float r = x - n * 0.693145751953125f; /* ln 2, split in two for an exact first product */
    r = r - n * 1.428606765330187045e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* tanh u = 1 - 2 / (e^(2u) + 1) */
static inline float anv_vtanhf(float u) { return 1.0f - 2.0f / (anv_vexpf(2.0f * u) + 1.0f); }

#endif
