/* General matrix multiply for the CPU kernels (internal to src/kernels/cpu): the GEMMs of
 * kernel_list.h and the built-in GEMM's blocking. */
#ifndef ANVIL_KERNELS_CPU_GEMM_H
#define ANVIL_KERNELS_CPU_GEMM_H

#include "anvil/kernels.h"

/* anv_gemm, anv_gemm_builtin, anv_gemm_bf16: the internal lines of kernel_list.h. */
#define ANV_KERNEL_INTERNAL(ret, name, params, args) ret anv_##name params;
#include "anvil/kernel_list.h"

/* Blocking of the built-in GEMM: C in (MC, NC) tiles, K in KC slices. */
enum { ANV_GEMM_MC = 96, ANV_GEMM_NC = 256, ANV_GEMM_KC = 256 };

/* A buffer that one thread keeps from call to call (fresh pages on every call cost about as much as the
 * packing): *s grown to at least `bytes`; NULL with an error (naming `what`) when out of memory. Defined
 * once (gemm_packed.c); callers hold a _Thread_local anv_scratch_t. */
typedef struct {
    void *data;
    size_t capacity;
} anv_scratch_t;
void *anv_scratch(anv_scratch_t *s, size_t bytes, const char *what);

/* This thread's packing buffer, MC*KC + KC*NC floats, 64-byte aligned. Defined once (gemm_pack.c),
 * not per ISA copy, so every thread carries one set of thread-local buffers instead of three. */
float *anv_gemm_pack_buffer(void);

/* The unit that multiplies the AVX-512 copy's bf16 GEMM (bf16_engine.c), chosen once per process. Defined
 * once, not per ISA copy, like the rest below. */
typedef enum {
    ANV_BF16_ON_FMA, /* fp32 FMAs on operands rounded to bf16 */
    ANV_BF16_ON_DOT, /* AVX512_BF16's vdpbf16ps */
    ANV_BF16_ON_AMX  /* AMX tiles, tdpbf16ps */
} anv_bf16_engine_t;
anv_bf16_engine_t anv_cpu_bf16_engine(void);
/* 1 when this CPU (and OS) can run engine e; the FMA engine rounds with vcvtneps2bf16, so it too needs
 * AVX512_BF16 (other AVX-512 CPUs round copies of the operands, as the AVX2 copy does). */
int anv_cpu_bf16_engine_has(anv_bf16_engine_t e);
/* Tests: the bf16 GEMM runs on e (one this CPU has) from now on. */
void anv_cpu_bf16_engine_set(anv_bf16_engine_t e);
/* The rate of vdpbf16ps over that of fp32 FMAs on this machine's threads (peak.c), measured for about
 * `seconds`; 0 without AVX512_BF16. */
double anv_cpu_dot_over_fma(double seconds);

/* 1 when the CPU has AMX-TILE and AMX-BF16 and Linux grants this process the tile state (amx.c). */
int anv_cpu_amx(void);
/* Configures the calling thread's eight tiles as 16 rows of 64 bytes (palette 1), once per thread. */
void anv_cpu_amx_configure(void);

#endif
