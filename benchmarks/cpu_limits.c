/* What one core of this CPU can do at most, for the edge sampler's batch-N bound (docs/benchmarks.md,
 * "Many samples"): its int8 multiply-add rate (AVX-512 VNNI vpdpbusd, 12 independent accumulators) and
 * how fast it reads a working set of MB megabytes (default 5.5: the 3x512 int8 step model's weights),
 * best of 200 passes.
 *
 *     cc -O2 -mavx512f -mavx512bw -mavx512vl -mavx512vnni benchmarks/cpu_limits.c -o /tmp/cpu_limits
 *     /tmp/cpu_limits [MB ...]
 */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Multiply-adds per second: each vpdpbusd on zmm registers does 64 (u8 x s8, summed into 16 int32). */
static double int8_peak(void) {
    const __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(2);
    __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
    __m512i c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
    const long n = 100000000L;
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double start = now();
        for (long i = 0; i < n; i++) {
            c0 = _mm512_dpbusd_epi32(c0, a, b); c1 = _mm512_dpbusd_epi32(c1, a, b);
            c2 = _mm512_dpbusd_epi32(c2, a, b); c3 = _mm512_dpbusd_epi32(c3, a, b);
            c4 = _mm512_dpbusd_epi32(c4, a, b); c5 = _mm512_dpbusd_epi32(c5, a, b);
            c6 = _mm512_dpbusd_epi32(c6, a, b); c7 = _mm512_dpbusd_epi32(c7, a, b);
            c8 = _mm512_dpbusd_epi32(c8, a, b); c9 = _mm512_dpbusd_epi32(c9, a, b);
            c10 = _mm512_dpbusd_epi32(c10, a, b); c11 = _mm512_dpbusd_epi32(c11, a, b);
            __asm__ volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5),
                             "+v"(c6), "+v"(c7), "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11));
        }
        double seconds = now() - start;
        if (seconds < best) best = seconds;
    }
    __m512i sum = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(c0, c1), _mm512_add_epi32(c2, c3)),
                                   _mm512_add_epi32(_mm512_add_epi32(c4, c5), _mm512_add_epi32(c6, c7)));
    sum = _mm512_add_epi32(sum, _mm512_add_epi32(_mm512_add_epi32(c8, c9), _mm512_add_epi32(c10, c11)));
    if (_mm512_reduce_add_epi32(sum) == 1) puts("");  /* keeps the sums live */
    return n * 12.0 * 64 / best;
}

/* Bytes per second reading `bytes` over and over with 64-byte loads (the fastest of 200 passes). */
static double read_rate(size_t bytes) {
    bytes = (bytes + 255) / 256 * 256;
    char *buf = aligned_alloc(64, bytes);
    for (size_t i = 0; i < bytes; i++) buf[i] = (char)i;
    __m512i total = _mm512_setzero_si512();
    double best = 1e30;
    for (int rep = 0; rep < 200; rep++) {
        double start = now();
        __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;  /* registers within a pass */
        for (size_t i = 0; i < bytes; i += 256) {
            s0 = _mm512_add_epi32(s0, _mm512_load_si512(buf + i));
            s1 = _mm512_add_epi32(s1, _mm512_load_si512(buf + i + 64));
            s2 = _mm512_add_epi32(s2, _mm512_load_si512(buf + i + 128));
            s3 = _mm512_add_epi32(s3, _mm512_load_si512(buf + i + 192));
        }
        double seconds = now() - start;
        total = _mm512_add_epi32(total, _mm512_add_epi32(_mm512_add_epi32(s0, s1), _mm512_add_epi32(s2, s3)));
        if (seconds < best) best = seconds;
    }
    if (_mm512_reduce_add_epi32(total) == 1) puts("");
    free(buf);
    return bytes / best;
}

int main(int argc, char **argv) {
    printf("int8 multiply-adds (vpdpbusd zmm): %.0f G/s on one core\n", int8_peak() / 1e9);
    for (int i = 1; i < argc || i == 1; i++) {
        double mb = argc > 1 ? atof(argv[i]) : 5.5;
        double rate = read_rate((size_t)(mb * 1e6));
        printf("reading %.1f MB: %.1f GB/s, %.1f us per pass\n", mb, rate / 1e9, mb * 1e6 / rate * 1e6);
    }
    return 0;
}
