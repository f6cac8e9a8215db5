/* The built-in GEMM's per-thread packing buffer, shared by all ISA copies of gemm.c (see gemm.h).
 * Thread-local storage: the pool's threads persist, so it is set up once per thread. */
#include "kernels/cpu/gemm.h"

float *anv_gemm_pack_buffer(void) {
    static _Thread_local float buffer[ANV_GEMM_MC * ANV_GEMM_KC + ANV_GEMM_KC * ANV_GEMM_NC]
        __attribute__((aligned(64)));
    return buffer;
}
