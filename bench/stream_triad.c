/* STREAM triad, a[i] = b[i] + s*c[i], over three float32 arrays of N elements (64 MB each by
 * default, far larger than any cache).  Prints one line: the best GB/s over the repetitions,
 * counting 3 * N * 4 bytes per pass as STREAM does (write-allocate traffic not counted).
 * Threads: OMP_NUM_THREADS.  Build: gcc -O3 -march=native -fopenmp stream_triad.c */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1L << 24;
    int reps = argc > 2 ? atoi(argv[2]) : 20;
    float *a = aligned_alloc(64, n * sizeof(float));
    float *b = aligned_alloc(64, n * sizeof(float));
    float *c = aligned_alloc(64, n * sizeof(float));
    if (!a || !b || !c) return 1;
    const float s = 3.0f;
#pragma omp parallel for schedule(static) /* first touch by the thread that uses the page */
    for (long i = 0; i < n; i++) { a[i] = 0.0f; b[i] = 1.0f; c[i] = 2.0f; }
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = omp_get_wtime();
#pragma omp parallel for simd schedule(static)
        for (long i = 0; i < n; i++) a[i] = b[i] + s * c[i];
        t = omp_get_wtime() - t;
        if (t < best) best = t;
    }
    if (a[n / 2] != 7.0f) { fprintf(stderr, "wrong result %f\n", a[n / 2]); return 1; }
    printf("%.3f\n", 3.0 * n * sizeof(float) / best / 1e9);
    return 0;
}
