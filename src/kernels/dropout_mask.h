/* The dropout mask, drawn the same on the CPU and the GPU (C and CUDA): element i of a tensor whose draws
 * come from `seed` is kept when 24 bits of SplitMix64's output for seed and i are at least p * 2^24. A
 * counter-based draw needs no stored mask: the backward pass draws it again. */
#ifndef ANVIL_KERNELS_DROPOUT_MASK_H
#define ANVIL_KERNELS_DROPOUT_MASK_H

#include <stdint.h>

#ifdef __CUDACC__
#define ANV_HOST_DEVICE __host__ __device__
#else
#define ANV_HOST_DEVICE
#endif

/* p as the threshold of the 24-bit draws. */
static inline ANV_HOST_DEVICE uint32_t anv_dropout_threshold(float p) { return (uint32_t)((double)p * 16777216.0); }

static inline ANV_HOST_DEVICE int anv_dropout_keep(uint64_t seed, uint64_t i, uint32_t threshold) {
    uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (uint32_t)(z >> 40) >= threshold;
}

#endif
