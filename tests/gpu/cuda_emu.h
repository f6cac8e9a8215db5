/* A CPU emulation of the CUDA features that the kernels kept in headers under src/kernels/cuda (*.cuh)
 * use, so that their logic (indexing, masking, synchronisation, fragment layouts and alignment) is
 * tested on machines without a GPU. Not a simulator: the aim is the kernels' results, not their speed.
 *
 * - A launch runs the blocks one after another; each block's threads are real threads, so
 *   __syncthreads (a barrier of the block) and __syncwarp / __shfl_sync / __shfl_xor_sync (barriers of
 *   the warp) behave as on the GPU, and a kernel that leaves a thread out of a barrier hangs here too.
 * - A __shared__ array is a static local of the kernel: with one block at a time, it is the block's.
 * - Dynamic shared memory is a static buffer per kernel family (att_tc::att_tc_smem,
 *   att_dec::att_dec_smem), which the headers declare only for the GPU. It is filled with NaN before
 *   each block, so reading what was never written shows in the results.
 * - mma.sync m16n8k16 (bf16 in, fp32 out) exchanges the lanes' fragment registers as the tensor cores
 *   do (see emu_mma_m16n8k16_bf16) and accumulates in fp32, k in increasing order.
 * - bf16 rounds to nearest even, as __float2bfloat16 does. */
#ifndef ANVIL_TESTS_CUDA_EMU_H
#define ANVIL_TESTS_CUDA_EMU_H

#define ANVIL_CUDA_EMULATION 1

#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __shared__ static
#define __launch_bounds__(n)
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct float4 {
    float x, y, z, w;
};
static inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
/* round to nearest, ties to even (the default rounding mode) */
static inline int __float2int_rn(float x) { return (int)std::nearbyint(x); }

inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

enum { EMU_SMEM_BYTES = 256 * 1024, EMU_MAX_THREADS = 1024 };
/* the dynamic shared memory, under the names (and in the namespaces) where the kernels declare it */
namespace att_tc {
alignas(128) inline unsigned char att_tc_smem[EMU_SMEM_BYTES];
}
namespace att_dec {
alignas(128) inline unsigned char att_dec_smem[EMU_SMEM_BYTES];
}

namespace emu {
inline std::unique_ptr<std::barrier<>> block_barrier;
inline std::vector<std::unique_ptr<std::barrier<>>> warp_barriers;
inline double shuffle_slots[EMU_MAX_THREADS];

[[noreturn]] inline void fail(const char *what) {
    fprintf(stderr, "cuda emulation: %s\n", what);
    abort();
}
inline int thread_linear() { return (int)threadIdx.x; }
} /* namespace emu */

inline void __syncthreads() { emu::block_barrier->arrive_and_wait(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) {
    if (mask != 0xffffffffu) emu::fail("__syncwarp with a partial mask");
    emu::warp_barriers[emu::thread_linear() / 32]->arrive_and_wait();
}
namespace emu {
/* v of lane `lane` of the calling thread's warp */
template <class T> inline T shuffle(unsigned mask, T v, int lane) {
    int me = thread_linear();
    __syncwarp(mask);
    shuffle_slots[me] = (double)v;
    __syncwarp(mask);
    T got = (T)shuffle_slots[(me & ~31) | (lane & 31)];
    __syncwarp(mask);
    return got;
}
} /* namespace emu */
template <class T> inline T __shfl_sync(unsigned mask, T v, int src_lane) { return emu::shuffle(mask, v, src_lane); }
template <class T> inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask) {
    return emu::shuffle(mask, v, (emu::thread_linear() & 31) ^ lane_mask);
}
/* CUDA's integer min and max */
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }

/* ---- bf16 ---- */
struct __nv_bfloat16 {
    uint16_t bits;
};
inline __nv_bfloat16 __float2bfloat16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if (std::isnan(f)) return __nv_bfloat16{(uint16_t)((u >> 16) | 0x40)};
    u += 0x7fff + ((u >> 16) & 1); /* round to nearest, ties to even */
    return __nv_bfloat16{(uint16_t)(u >> 16)};
}
inline float __bfloat162float(__nv_bfloat16 b) {
    uint32_t u = (uint32_t)b.bits << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) { return b.bits; }

/* ---- mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32, through the warp's registers ----
 * Every lane publishes its fragment registers; each lane then rebuilds A (16 x 16) and B (16 x 8) by
 * scattering all lanes' registers to the positions the PTX ISA gives them, and computes its own four
 * elements of C. The scatter is written independently of the kernels' gathers, so a kernel that
 * misplaces an element gets wrong numbers here as on the GPU. Lane = 4 g + q:
 *   a[j] (j = 0..3) holds A[g + 8 (j % 2)][2q + 8 (j / 2) + e], e = 0 in the low half, 1 in the high
 *   b[j] (j = 0..1) holds B[2q + 8 j + e][g]
 *   c[i] (i = 0..3) is C[g + 8 (i / 2)][2q + i % 2] */
namespace emu {
inline uint32_t mma_a[EMU_MAX_THREADS][4], mma_b[EMU_MAX_THREADS][2];
inline float half_to_float(uint32_t reg, int e) { return __bfloat162float(__nv_bfloat16{(uint16_t)(reg >> (16 * e))}); }
} /* namespace emu */

inline void emu_mma_m16n8k16_bf16(float c[4], const uint32_t a[4], const uint32_t b[2]) {
    int me = emu::thread_linear(), warp0 = me & ~31;
    __syncwarp();
    memcpy(emu::mma_a[me], a, sizeof emu::mma_a[me]);
    memcpy(emu::mma_b[me], b, sizeof emu::mma_b[me]);
    __syncwarp();
    float A[16][16], B[16][8];
    for (int lane = 0; lane < 32; lane++) {
        int g = lane / 4, q = lane % 4;
        for (int e = 0; e < 2; e++) {
            for (int j = 0; j < 4; j++)
                A[g + 8 * (j % 2)][2 * q + 8 * (j / 2) + e] = emu::half_to_float(emu::mma_a[warp0 + lane][j], e);
            for (int j = 0; j < 2; j++) B[2 * q + 8 * j + e][g] = emu::half_to_float(emu::mma_b[warp0 + lane][j], e);
        }
    }
    int g = (me & 31) / 4, q = (me & 31) % 4;
    for (int i = 0; i < 4; i++) {
        int r = g + 8 * (i / 2), n = 2 * q + i % 2;
        float sum = c[i];
        for (int k = 0; k < 16; k++) sum += A[r][k] * B[k][n];
        c[i] = sum;
    }
    __syncwarp();
}

/* kernel<<<grid, block, smem>>>(args...) as emu_launch(kernel, grid, block, smem, args...). */
template <class Kernel, class... Args>
inline void emu_launch(Kernel kernel, dim3 grid, dim3 block, size_t smem, Args... args) {
    if (smem > EMU_SMEM_BYTES) emu::fail("more dynamic shared memory than the emulation has");
    if (block.x > EMU_MAX_THREADS || block.x % 32 || block.y != 1 || block.z != 1) emu::fail("unsupported block shape");
    gridDim = grid;
    blockDim = block;
    for (unsigned by = 0; by < grid.y; by++)
        for (unsigned bx = 0; bx < grid.x; bx++) {
            float nan = NAN;
            for (unsigned char *buf : {att_tc::att_tc_smem, att_dec::att_dec_smem})
                for (size_t i = 0; i + 4 <= smem; i += 4) memcpy(buf + i, &nan, 4);
            emu::block_barrier = std::make_unique<std::barrier<>>(block.x);
            emu::warp_barriers.clear();
            for (unsigned w = 0; w < block.x / 32; w++)
                emu::warp_barriers.push_back(std::make_unique<std::barrier<>>(32));
            std::vector<std::thread> threads;
            for (unsigned t = 0; t < block.x; t++)
                threads.emplace_back([=] {
                    threadIdx = dim3(t);
                    blockIdx = dim3(bx, by);
                    kernel(args...);
                });
            for (auto &th : threads) th.join();
        }
}

#endif
