/* Which unit multiplies the AVX-512 copy's bf16 GEMM (gemm_bf16.c), chosen once per process, at the first
 * bf16 product:
 *  - AMX tiles (tdpbf16ps) where the CPU has AMX-BF16 and Linux grants the tile state (amx.c);
 *  - else vdpbf16ps where the CPU has AVX512_BF16 and it does at least DOT_MIN of the fp32 FMAs'
 *    floating-point work per second here (measured: twice on AMD Zen 4; about half on Intel cores whose
 *    AMX is absent or not exposed, where the bf16 products are faster on the FMAs);
 *  - else fp32 FMAs on the operands rounded to bf16, at the fp32 rate (rounded while packing where the
 *    CPU has AVX512_BF16, else into copies).
 * The three give the same products of the same rounded inputs; only the order and rounding of the fp32
 * sums differ. ANVIL_BF16_ENGINE=amx|dot|fma in the environment names the unit instead. */
#include "anvil/base.h"
#include "anvil/kernels.h"
#include "kernels/cpu/gemm.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Below this the measured pick is FMA. Not 1: the choice changes the sums' rounding, so it must not flip
 * from run to run (or at a resume) on a CPU whose two rates are close; there either is about as fast. */
#define DOT_MIN 0.75

static const char *const names[] = {"fma", "dot", "amx"};
static anv_bf16_engine_t chosen;
static double measured = -1; /* vdpbf16ps's rate over the FMAs', where the choice measured it */
static const char *named;    /* the environment's choice, where it made one */
static int set_by_test = -1;
static pthread_once_t once = PTHREAD_ONCE_INIT;

int anv_cpu_bf16_engine_has(anv_bf16_engine_t e) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) return 0;
    if (e == ANV_BF16_ON_AMX) return anv_cpu_amx();
    return __builtin_cpu_supports("avx512bf16");
#else
    (void)e;
    return 0;
#endif
}

/* The measured rate of vdpbf16ps over the FMAs', or ANVIL_TEST_DOT_OVER_FMA's (tests of both outcomes). */
static double dot_over_fma(void) {
    const char *s = getenv("ANVIL_TEST_DOT_OVER_FMA");
    char *end;
    double r = s ? strtod(s, &end) : 0;
    return s && *end == '\0' && r > 0 ? r : anv_cpu_dot_over_fma(0.02);
}

static void choose(void) {
    const char *env = getenv("ANVIL_BF16_ENGINE");
    if (env && *env) {
        for (int e = 0; e < 3; e++)
            if (!strcmp(env, names[e]) && anv_cpu_bf16_engine_has((anv_bf16_engine_t)e)) {
                chosen = (anv_bf16_engine_t)e;
                named = names[e];
                return;
            }
        anv_log(ANV_LOG_WARN, "ANVIL_BF16_ENGINE=%s: not a bf16 unit of this CPU (fma, dot, amx); measuring instead",
                env);
    }
    if (anv_cpu_bf16_engine_has(ANV_BF16_ON_AMX))
        chosen = ANV_BF16_ON_AMX;
    else if (anv_cpu_bf16_engine_has(ANV_BF16_ON_DOT))
        chosen = (measured = dot_over_fma()) >= DOT_MIN ? ANV_BF16_ON_DOT : ANV_BF16_ON_FMA;
    else
        chosen = ANV_BF16_ON_FMA;
}

anv_bf16_engine_t anv_cpu_bf16_engine(void) {
    int e = __atomic_load_n(&set_by_test, __ATOMIC_ACQUIRE);
    if (e >= 0) return (anv_bf16_engine_t)e;
    pthread_once(&once, choose);
    return chosen;
}

void anv_cpu_bf16_engine_set(anv_bf16_engine_t e) { __atomic_store_n(&set_by_test, (int)e, __ATOMIC_RELEASE); }

const char *anv_cpu_bf16_products(void) {
    static const char *const units[] = {"fp32 FMAs, operands rounded to bf16", "vdpbf16ps", "AMX tiles (tdpbf16ps)"};
    static char text[160];
    if (strcmp(anv_cpu_isa(), "avx512") != 0) return units[ANV_BF16_ON_FMA];
    anv_bf16_engine_t e = anv_cpu_bf16_engine();
    if (__atomic_load_n(&set_by_test, __ATOMIC_ACQUIRE) >= 0 || (!named && measured < 0)) return units[e];
    if (named)
        snprintf(text, sizeof text, "%s (ANVIL_BF16_ENGINE=%s)", units[e], named);
    else if (e == ANV_BF16_ON_DOT)
        snprintf(text, sizeof text, "%s (%.2fx the fp32 FMAs' GFLOP/s here)", units[e], measured);
    else
        snprintf(text, sizeof text, "%s (vdpbf16ps does %.2fx their GFLOP/s here)", units[e], measured);
    return text;
}
