/* A CPU emulation of the CUDA features that src/kernels/cuda/attention_tc.cuh uses, so that its kernels'
 * logic (indexing, masking, synchronisation, WMMA tile shapes and alignment) is tested on machines
 * without a GPU. Not a simulator: the aim is the kernels' results, not their speed.
 *
 * - A launch runs the blocks one after another; each block's threads are real threads, so
 *   __syncthreads (a barrier of the block) and __syncwarp / __shfl_xor_sync (barriers of the warp)
 *   behave as on the GPU, and a kernel that leaves a thread out of a barrier hangs here too.
 * - Shared memory is one static buffer (att_tc::att_tc_smem): with one block at a time, it is the block's.
 *   It is filled with NaN before each block, so reading what was never written shows in the results.
 * - WMMA fragments hold the whole 16 x 16 matrix on every lane; each lane does the whole operation on
 *   its copy, so the lanes agree as they do on the GPU. Loads check the rules of the real API: pointers
 *   256-bit aligned, ldm a multiple of 16 bytes. mma accumulates in fp32, k in increasing order.
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
#include <memory>
#include <thread>
#include <type_traits>
#include <vector>

#define __global__
#define __device__
#define __shared__
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

inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

enum { EMU_SMEM_BYTES = 256 * 1024, EMU_MAX_THREADS = 1024 };
/* the dynamic shared memory, under the name (and in the namespace) where the kernels declare it */
namespace att_tc {
alignas(128) inline unsigned char att_tc_smem[EMU_SMEM_BYTES];
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
template <class T> inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask) {
    int me = emu::thread_linear();
    __syncwarp(mask);
    emu::shuffle_slots[me] = (double)v;
    __syncwarp(mask);
    T got = (T)emu::shuffle_slots[(me & ~31) | ((me & 31) ^ lane_mask)];
    __syncwarp(mask);
    return got;
}

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
inline float emu_to_float(float f) { return f; }
inline float emu_to_float(__nv_bfloat16 b) { return __bfloat162float(b); }

/* ---- WMMA, 16 x 16 x 16 ---- */
namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void> struct fragment {
    float v[16][16]; /* the logical matrix, element (i, j) */
};

template <class T> inline void check_operand(const void *p, unsigned ldm) {
    if ((uintptr_t)p % 32) emu::fail("WMMA pointer not 256-bit aligned");
    if (ldm * sizeof(T) % 16) emu::fail("WMMA ldm not a multiple of 16 bytes");
}

template <class Use, class T, class Layout>
inline void load_matrix_sync(fragment<Use, 16, 16, 16, T, Layout> &f, const T *p, unsigned ldm) {
    check_operand<T>(p, ldm);
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++)
            f.v[i][j] =
                emu_to_float(std::is_same<Layout, col_major>::value ? p[i + (size_t)j * ldm] : p[(size_t)i * ldm + j]);
}
template <class Use, class T, class Layout>
inline void fill_fragment(fragment<Use, 16, 16, 16, T, Layout> &f, float x) {
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) f.v[i][j] = x;
}
template <class LA, class LB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float> &d,
                     const fragment<matrix_a, 16, 16, 16, __nv_bfloat16, LA> &a,
                     const fragment<matrix_b, 16, 16, 16, __nv_bfloat16, LB> &b,
                     const fragment<accumulator, 16, 16, 16, float> &c) {
    float out[16][16];
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            float s = c.v[i][j];
            for (int k = 0; k < 16; k++) s += a.v[i][k] * b.v[k][j];
            out[i][j] = s;
        }
    memcpy(d.v, out, sizeof out);
}
inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &f, unsigned ldm,
                              layout_t layout) {
    check_operand<float>(p, ldm);
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            if (layout == mem_row_major)
                p[(size_t)i * ldm + j] = f.v[i][j];
            else
                p[i + (size_t)j * ldm] = f.v[i][j];
        }
}
} /* namespace wmma */
} /* namespace nvcuda */

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
            for (size_t i = 0; i + 4 <= smem; i += 4) memcpy(att_tc::att_tc_smem + i, &nan, 4);
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
