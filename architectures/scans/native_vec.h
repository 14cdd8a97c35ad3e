/* Shared by the C kernels (native_kernels.c, attention_kernels.c, norm_kernels.c,
 * gate_kernels.c): the vector type they are written on, our vectorised exp and sigmoid, and the
 * row units of the row kernels. Header-only and `static inline`, so each kernel file
 * compiles on its own into the one shared library seqbench.architectures.scans.native loads. */
#ifndef SEQBENCH_NATIVE_VEC_H
#define SEQBENCH_NATIVE_VEC_H
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define W 16 /* channels per block: one vector register of 16 floats (AVX-512; 2x AVX2, 4x NEON) */

/* GCC/Clang vector extensions: the block arithmetic is written once on whole vectors, so it is
 * vectorised on every target without relying on the auto-vectoriser. */
typedef float vf __attribute__((vector_size(4 * W)));
typedef int vi __attribute__((vector_size(4 * W)));
typedef float vfu __attribute__((vector_size(4 * W), aligned(4))); /* unaligned access */

static inline vf load(const float *p) { return *(const vfu *)p; }
static inline void store(float *p, vf v) { *(vfu *)p = v; }
static inline vf splat(float x) { return (vf){0} + x; }
static inline float hsum(vf v) {
    float s = 0.0f;
    for (int w = 0; w < W; w++) s += v[w];
    return s;
}

static inline vf exp_approx(vf x) {
    /* exp(x) = 2^k * exp(r), k = round(x / ln 2), |r| <= ln2 / 2: Cephes' expf polynomial. */
    vi lo = x < splat(-87.0f), hi = x > splat(88.0f);
    x = (vf)(((vi)x & ~lo) | ((vi)splat(-87.0f) & lo));
    x = (vf)(((vi)x & ~hi) | ((vi)splat(88.0f) & hi));
    const vf magic = splat(12582912.0f); /* 1.5 * 2^23: adding it rounds to an integer */
    vf k = (x * splat(1.44269504088896341f) + magic) - magic;
    vf r = x - k * splat(0.693359375f) + k * splat(2.12194440e-4f);
    vf p = splat(1.9875691500e-4f);
    p = p * r + splat(1.3981999507e-3f);
    p = p * r + splat(8.3334519073e-3f);
    p = p * r + splat(4.1665795894e-2f);
    p = p * r + splat(1.6666665459e-1f);
    p = p * r + splat(5.0000001201e-1f);
    p = p * r * r + r + splat(1.0f);
    vi e = (__builtin_convertvector(k, vi) + 127) << 23;
    return p * (vf)e;
}

static inline vf sigmoid_v(vf z) { return splat(1.0f) / (splat(1.0f) + exp_approx(-z)); }
static inline float sigmoid_s(float z) { return 1.0f / (1.0f + expf(-z)); }

/* Row kernels (norm_kernels.c, gate_kernels.c) split rows into units of ROW_UNIT rows, [u0, u1)
 * per call: callers on several threads write disjoint rows, and a weight's gradient is summed
 * per unit, so a thread split changes no bit. */
#define ROW_UNIT 64
static inline int rows_end(int u1, int R) { return u1 * ROW_UNIT < R ? u1 * ROW_UNIT : R; }

#endif
