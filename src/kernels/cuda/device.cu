/* The CUDA device: initialisation (the calling thread's current GPU, which is 0 unless something such
 * as the NCCL communicator chose another first; one non-blocking stream; a cuBLASLt handle and its
 * workspace), managed memory for anv_device_alloc, scratch memory for kernels, and error reporting. */
#include "kernels/cuda/cuda_common.h"

enum { LT_WORKSPACE_BYTES = 32 << 20 };

static int ready; /* 1 once anv_cuda_init succeeded */
static int device_id;
static cudaStream_t stream;
static cublasLtHandle_t lt;
static void *lt_workspace;
static void *scratch;
static size_t scratch_bytes;

int anv_cuda_check(cudaError_t err, const char *what) {
    if (err == cudaSuccess) return 0;
    return anv_error("CUDA %s: %s (%s)", what, cudaGetErrorString(err), cudaGetErrorName(err));
}

int anv_cublas_check(cublasStatus_t st, const char *what) {
    if (st == CUBLAS_STATUS_SUCCESS) return 0;
    return anv_error("cuBLASLt %s: %s (%s)", what, cublasLtGetStatusString(st), cublasLtGetStatusName(st));
}

void anv_cuda_report(cudaError_t err, const char *what) {
    if (anv_cuda_check(err, what) != 0) anv_kernel_failed();
}

cudaStream_t anv_cuda_stream(void) { return stream; }
cublasLtHandle_t anv_cuda_lt(void) { return lt; }

void *anv_cuda_lt_workspace(size_t *bytes) {
    *bytes = LT_WORKSPACE_BYTES;
    return lt_workspace;
}

int anv_cuda_init(void) {
    if (ready) return 0;
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess)
        return anv_error("device cuda: no usable GPU (cudaGetDeviceCount: %s)", cudaGetErrorString(err));
    if (n < 1) return anv_error("device cuda: no CUDA device");
    int major = 0;
    if (anv_cuda_check(cudaGetDevice(&device_id), "reading the current GPU") != 0 ||
        anv_cuda_check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device_id),
                       "reading the compute capability") != 0)
        return -1;
    if (major < 8)
        return anv_error("device cuda: GPU %d has compute capability %d.x; anvil needs 8.0 or newer", device_id, major);
    if (anv_cuda_check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "creating a stream") != 0) return -1;
    if (anv_cublas_check(cublasLtCreate(&lt), "creating a handle") != 0) return -1;
    if (anv_cuda_check(cudaMalloc(&lt_workspace, LT_WORKSPACE_BYTES), "allocating the GEMM workspace") != 0) return -1;
    ready = 1;
    return 0;
}

/* GPU memory left free beside the managed buffers, for what is allocated later with cudaMalloc (kernel
 * scratch, cuBLASLt's and NCCL's buffers) and the CUDA context's own needs. */
enum { HEADROOM_BYTES = 512 << 20 };

void *anv_cuda_alloc(size_t bytes, const char *what) {
    if (anv_cuda_init() != 0) return NULL;
    size_t n = bytes ? bytes : 1;
    /* Managed memory beyond what the GPU has free would be paged to and from the host behind the
     * kernels' backs, and a GPU oversubscribed that way can hang; so a buffer must fit in the free
     * memory (the buffers before it are resident: they were zero-filled on the device). */
    size_t free_bytes = 0, total_bytes = 0;
    if (anv_cuda_check(cudaMemGetInfo(&free_bytes, &total_bytes), "reading the free GPU memory") != 0) {
        anv_error_prefix("%s", what);
        return NULL;
    }
    if (free_bytes < HEADROOM_BYTES || n > free_bytes - HEADROOM_BYTES) {
        anv_error("out of GPU memory: %s needs %.1f MiB, and the GPU has %.1f MiB free of %.1f MiB (%d MiB of "
                  "it kept for scratch)",
                  what, n / 1048576.0, free_bytes / 1048576.0, total_bytes / 1048576.0, HEADROOM_BYTES >> 20);
        return NULL;
    }
    void *p = NULL;
    cudaError_t err = cudaMallocManaged(&p, n, cudaMemAttachGlobal);
    if (err != cudaSuccess) {
        cudaGetLastError(); /* an allocation failure is not sticky: clear it for the next launch check */
        anv_error("out of GPU memory: %s needs %zu bytes (%.1f MiB): %s", what, n, n / 1048576.0,
                  cudaGetErrorString(err));
        return NULL;
    }
    cudaMemLocation loc = {};
    loc.type = cudaMemLocationTypeDevice;
    loc.id = device_id;
    /* Zero-filled on the device, then waited for, so that the host may write the buffer at once. */
    if (anv_cuda_check(cudaMemAdvise(p, n, cudaMemAdviseSetPreferredLocation, loc), "cudaMemAdvise") != 0 ||
        anv_cuda_check(cudaMemsetAsync(p, 0, n, stream), "zero-filling a buffer") != 0 ||
        anv_cuda_check(cudaStreamSynchronize(stream), "zero-filling a buffer") != 0) {
        anv_error_prefix("%s", what);
        cudaFree(p);
        return NULL;
    }
    return p;
}

void anv_cuda_free(void *p) {
    if (!p) return;
    anv_cuda_report(cudaStreamSynchronize(stream), "waiting before a free");
    anv_cuda_report(cudaFree(p), "cudaFree");
}

void anv_cuda_sync(void) { anv_cuda_report(cudaStreamSynchronize(stream), "waiting for the kernels"); }

size_t anv_cuda_memory_bytes(void) {
    size_t free_bytes = 0, total_bytes = 0;
    if (anv_cuda_init() != 0 || cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) return 0;
    return total_bytes;
}

void *anv_cuda_scratch(size_t bytes, const char *what) {
    if (bytes <= scratch_bytes) return scratch;
    size_t want = scratch_bytes + scratch_bytes / 2;
    want = want > bytes ? want : bytes;
    /* The old block may still be in use by kernels in flight. */
    anv_cuda_report(cudaStreamSynchronize(stream), "waiting before growing the scratch memory");
    cudaFree(scratch);
    scratch = NULL;
    scratch_bytes = 0;
    cudaError_t err = cudaMalloc(&scratch, want);
    if (err != cudaSuccess) {
        cudaGetLastError();
        scratch = NULL;
        anv_error("out of GPU memory: scratch for %s needs %zu bytes: %s", what, bytes, cudaGetErrorString(err));
        anv_kernel_failed();
        return NULL;
    }
    scratch_bytes = want;
    return scratch;
}

/* ---- the profiler's events: a pool, created as needed and reused after each reset ---- */
enum { TIMER_EVENTS = 16384 };
static cudaEvent_t timer_events[TIMER_EVENTS];
static int timer_created, timer_used;

int anv_cuda_timer_mark(void) {
    if (timer_used == TIMER_EVENTS) return -1;
    if (timer_used == timer_created) {
        if (anv_cuda_check(cudaEventCreate(&timer_events[timer_created]), "creating a profiler event") != 0) {
            anv_log(ANV_LOG_WARN, "%s", anv_last_error());
            return -1;
        }
        timer_created++;
    }
    if (anv_cuda_check(cudaEventRecord(timer_events[timer_used], stream), "recording a profiler event") != 0) {
        anv_log(ANV_LOG_WARN, "%s", anv_last_error());
        return -1;
    }
    return timer_used++;
}

double anv_cuda_timer_seconds(int begin, int end) {
    float ms = 0.0f;
    if (anv_cuda_check(cudaEventSynchronize(timer_events[end]), "waiting for a profiler event") != 0 ||
        anv_cuda_check(cudaEventElapsedTime(&ms, timer_events[begin], timer_events[end]), "reading a profiler event") !=
            0) {
        anv_log(ANV_LOG_WARN, "%s", anv_last_error());
        return 0.0;
    }
    return ms * 1e-3;
}

void anv_cuda_timer_reset(void) { timer_used = 0; }
