/* Tensor encodings of GGUF files: IEEE half precision and ggml's Q8_0 blocks. */
#include "anvil/gguf.h"

#include <math.h>
#include <string.h>

uint16_t anv_f32_to_f16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    uint32_t sign = (u >> 16) & 0x8000u, mag = u & 0x7fffffffu;
    if (mag > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((mag >> 13) & 0x3ffu)); /* NaN stays NaN */
    if (mag >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);                         /* rounds to >= 65520: inf */
    if (mag < 0x38800000u) {
        /* Subnormal half (|x| < 2^-14): value = m * 2^-24 with m rounded to nearest even. */
        if (mag < 0x33000000u) return (uint16_t)sign; /* below half the smallest subnormal */
        int e = (int)(mag >> 23);                     /* biased exponent, 102..112 */
        uint32_t m = (mag & 0x7fffffu) | 0x800000u;
        int shift = 126 - e; /* m * 2^(e-150) = q * 2^-24 -> q = m >> (126 - e) */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    /* Normal: rebias the exponent (127 -> 15) and round the 23-bit mantissa to 10 bits. */
    uint32_t h = ((mag - 0x38000000u) >> 13), rem = mag & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; /* a carry into the exponent is correct */
    return (uint16_t)(sign | h);
}

float anv_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, u;
    if (e == 0) {
        float v = ldexpf((float)m, -24); /* zero or subnormal */
        return sign ? -v : v;
    }
    if (e == 31)
        u = sign | 0x7f800000u | (m << 13);
    else
        u = sign | ((e + 112) << 23) | (m << 13);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* As ggml's reference quantizer: q = roundf(x * (1/d)) with the fp32 d, then d stored as fp16. */
void anv_q8_0_quantize(const float *x, size_t n, uint8_t *dst) {
    for (size_t b = 0; b < n / ANV_Q8_0_BLOCK; b++, x += ANV_Q8_0_BLOCK, dst += ANV_Q8_0_BYTES) {
        float amax = 0;
        for (int i = 0; i < ANV_Q8_0_BLOCK; i++) amax = fmaxf(amax, fabsf(x[i]));
        float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
        uint16_t dh = anv_f32_to_f16(d);
        memcpy(dst, &dh, 2);
        for (int i = 0; i < ANV_Q8_0_BLOCK; i++) dst[2 + i] = (uint8_t)(int8_t)roundf(x[i] * id);
    }
}

void anv_q8_0_dequantize(const uint8_t *src, size_t n, float *x) {
    for (size_t b = 0; b < n / ANV_Q8_0_BLOCK; b++, x += ANV_Q8_0_BLOCK, src += ANV_Q8_0_BYTES) {
        uint16_t dh;
        memcpy(&dh, src, 2);
        float d = anv_f16_to_f32(dh);
        for (int i = 0; i < ANV_Q8_0_BLOCK; i++) x[i] = d * (float)(int8_t)src[2 + i];
    }
}

size_t anv_ggml_nbytes(anv_ggml_type_t t, uint64_t n) {
    switch (t) {
    case ANV_GGML_F32:
        return (size_t)n * 4;
    case ANV_GGML_F16:
        return (size_t)n * 2;
    case ANV_GGML_Q8_0:
        return (size_t)(n / ANV_Q8_0_BLOCK) * ANV_Q8_0_BYTES;
    }
    return 0;
}

const char *anv_ggml_type_name(anv_ggml_type_t t) {
    switch (t) {
    case ANV_GGML_F32:
        return "F32";
    case ANV_GGML_F16:
        return "F16";
    case ANV_GGML_Q8_0:
        return "Q8_0";
    }
    return "unknown";
}
