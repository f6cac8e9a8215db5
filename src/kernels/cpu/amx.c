/* Whether the bf16 GEMM can use AMX (Intel's tile matrix unit, from Sapphire Rapids on): the CPU has
 * AMX-TILE and AMX-BF16 and Linux grants this process the tile data state (arch_prctl
 * ARCH_REQ_XCOMP_PERM, asked once); and the tile configuration. */
#include "kernels/cpu/gemm.h"

#include <stdint.h>
#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

static int usable = -1; /* -1: not asked yet */

static int ask(void) {
#if defined(__x86_64__) && defined(__linux__)
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 22)) || !(d & (1u << 24))) return 0;
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return 0;
#endif
}

int anv_cpu_amx(void) {
    int u = __atomic_load_n(&usable, __ATOMIC_ACQUIRE);
    if (u < 0) { /* two threads asking at once ask twice, with the same answer */
        u = ask();
        __atomic_store_n(&usable, u, __ATOMIC_RELEASE);
    }
    return u;
}

#if defined(__x86_64__) && defined(__linux__)
__attribute__((target("amx-tile"))) void anv_cpu_amx_configure(void) {
    /* the configuration in memory that ldtilecfg reads: a constant, so no store to it can be elided */
    static const struct {
        uint8_t palette, start_row, reserved[14];
        uint16_t colsb[16];
        uint8_t rows[16];
    } __attribute__((aligned(64)))
    cfg = {1, 0, {0}, {64, 64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16, 16}};
    static _Thread_local int configured;
    if (configured) return;
    _tile_loadconfig(&cfg);
    configured = 1;
}
#else
void anv_cpu_amx_configure(void) {}
#endif
