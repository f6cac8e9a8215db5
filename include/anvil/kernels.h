/* The kernel interface: plain functions over raw pointers with sizes, listed with their contracts in
 * kernel_list.h. The model is written once as a sequence of these calls; backends (the CPU in copies
 * per instruction set, CUDA) implement them. Shapes in comments; all tensors row-major fp32. N is the
 * number of token rows (B*T).
 *
 * Gradient conventions: backward kernels ACCUMULATE (+=) into parameter gradients (so micro-batches
 * can accumulate) and into the residual-stream gradient where stated; other activation gradients are
 * overwritten. Every kernel is deterministic for a given thread count: no atomics, static schedules,
 * fixed reduction orders. */
#ifndef ANVIL_KERNELS_H
#define ANVIL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The tensors of one AdamW update (adamw_update in kernel_list.h): segment s is [start[s], end[s]) in
 * floats of the whole parameter block (increasing, not overlapping) and has weight decay when decay[s]
 * is nonzero. The arrays are device memory (anv_device_alloc). */
typedef struct {
    int count;
    const size_t *start, *end;
    const unsigned char *decay;
} anv_adamw_segments_t;

/* The kernels: anv_<name> for each public line of kernel_list.h, where their contracts are. */
#define ANV_KERNEL(ret, name, params, args) ret anv_##name params;
#define ANV_KERNEL_INTERNAL(ret, name, params, args)
#include "anvil/kernel_list.h"

/* ---- precision of matrix products ----
 * ANV_PRECISION_BF16 is mixed precision: each matrix product of the matmul kernels (linear layers, LM
 * head) rounds its two inputs to bfloat16 (round to nearest even) and accumulates in fp32; outputs, all
 * other kernels, master weights and optimizer state stay fp32. Default FP32. Not while kernels run. */
typedef enum { ANV_PRECISION_FP32, ANV_PRECISION_BF16 } anv_precision_t;
/* Values per block of the int8 weights of inference (quantize_q8, matmul_q8_forward in kernel_list.h). */
enum { ANV_Q8_BLOCK = 32 };
void anv_matmul_precision_set(anv_precision_t p);
anv_precision_t anv_matmul_precision(void);
/* "fp32" or "bf16"; -1 with an error otherwise. */
int anv_precision_parse(const char *name, anv_precision_t *out);
const char *anv_precision_name(anv_precision_t p);

/* ---- device ----
 * The backend that runs every kernel above: "cpu" (default) or "cuda" (the module libanvil_cuda.so,
 * built where nvcc is installed, on a machine with a GPU). Chosen by anv_device_set() or, at the first
 * kernel call, by the environment variable ANVIL_DEVICE (a device named there that is not available
 * ends the program with a message). Buffers that kernels touch come from anv_device_alloc: host memory
 * on the CPU, CUDA managed memory on the GPU, so the host can still read and write them (checkpoints,
 * tests) after anv_device_sync(). Kernels may run asynchronously; functions that return a value
 * (sumsq, loss_sum) wait for the device. Switch devices only before allocating. */
int anv_device_set(const char *name); /* -1 with an error when unknown or unavailable */
const char *anv_device(void);         /* "cpu" or "cuda" */
/* Zero-filled, 64-byte aligned; NULL with an error naming `what` on failure. */
void *anv_device_alloc(size_t bytes, const char *what);
void anv_device_free(void *p); /* NULL is fine */
void anv_device_sync(void);    /* waits until every kernel issued so far has finished */
/* Host <-> device copies of `bytes`: upload waits until no kernel still reads dst, download until the
 * kernels that write src have finished. Model code moves data to and from device buffers only so. */
void anv_device_upload(void *dst, const void *src, size_t bytes);
void anv_device_download(void *dst, const void *src, size_t bytes);
/* The device's memory in bytes: the RAM on the CPU, the GPU's own memory on cuda; 0 when unknown. */
size_t anv_device_memory_bytes(void);
/* Floats of the working blocks this device's products run best in: the LM head computes its logits in
 * blocks of about this many. */
size_t anv_device_block_floats(void);

/* ---- failures ----
 * A kernel that fails (a GPU launch, cuBLASLt without an algorithm for the case, device memory)
 * records the error for the calling thread and returns. anv_kernel_status() returns -1 with the first
 * error recorded on this thread since the last call (and forgets it), else 0. The model's entry
 * points check it, so such a failure reaches their caller as an error. */
int anv_kernel_status(void);
/* For backends: records anv_last_error() as this thread's kernel failure (the first one is kept). */
void anv_kernel_failed(void);

/* ---- profile ----
 * Where the time of a step goes, per kernel above (anvil bench train --profile). Between start and stop,
 * every kernel call made by the thread that called start is timed: wall time on the CPU; on the GPU the
 * time between CUDA events recorded before and after the call on the kernels' stream, which leaves the
 * kernels asynchronous. stop waits for the device, fills out (at most max entries) with the kernels called, the
 * most time first, and returns how many it wrote. */
typedef struct {
    const char *name;
    long calls;
    double seconds;
} anv_profile_entry_t;
void anv_profile_start(void);
int anv_profile_stop(anv_profile_entry_t *out, int max);

/* ---- instruction set ----
 * Every kernel above exists in copies for several instruction sets (x86-64: "avx512", "avx2", and
 * "portable" for the build's baseline); the first kernel call picks the widest the CPU supports, or
 * the one the environment variable ANVIL_CPU names. */
const char *anv_cpu_isa(void); /* the copy in use */
/* Switches to the named copy; -1 with an error if unknown or not supported by this CPU. Not while
 * kernels run on other threads. */
int anv_cpu_isa_set(const char *name);

/* How bf16 matrix products run with the kernels in use: "AMX tiles (tdpbf16ps)", "vdpbf16ps", or fp32
 * FMAs on operands rounded to bf16 (the AVX2 and portable copies, CPUs without AVX512_BF16, and those
 * whose vdpbf16ps does less work per second than their FMAs; the text says which). */
const char *anv_cpu_bf16_products(void);

/* ---- machine ceiling ----
 * The measured fp32 FMA peak in GFLOP/s of all anv_threads_count() threads, on the vectors of the
 * kernels in use: the best of 8 slices over about `seconds` in all; *vector_bits (may be NULL) gets the
 * vector width (512, 256; 0 for the portable copy's plain loop). */
double anv_cpu_fma_peak(double seconds, int *vector_bits);
/* The same for the unit of the bf16 products (anv_cpu_bf16_products): AMX's tdpbf16ps or vdpbf16ps; 0
 * where they run on the fp32 FMAs, at the fp32 peak. */
double anv_cpu_bf16_peak(double seconds);
/* The ceiling of a step in precision p, from the two peaks above (GFLOP/s, either may be 0 if not
 * measured): FP32 runs fp32 FMAs only, so the FMA peak; BF16 runs its products on the bf16 unit and
 * fp32 FMAs elsewhere (attention), so the higher of the two. */
double anv_cpu_precision_peak(anv_precision_t p, double fma_peak, double bf16_peak);

#ifdef __cplusplus
}
#endif

#endif
