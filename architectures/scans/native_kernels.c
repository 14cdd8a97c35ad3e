/* Fused CPU scan kernels, built at first use by seqbench.architectures.scans.native.
 *
 * C11 with GCC/Clang vector extensions and no PyTorch header: it compiles in about a second,
 * and the Python side passes raw float32 pointers through ctypes. The PyTorch scans stay the
 * fallback (no compiler, float64, CUDA) and the oracle the tests hold these equal to.
 *
 * Why fused: the eager PyTorch scans make ~20 passes over (B, L, N, D) numbers per
 * forward+backward; here every step's numbers are made, used and dropped while they sit in
 * registers or L1. The Mamba-1 kernels work on blocks of W contiguous channels (D must be a
 * multiple of W: the caller pads), one vector each; `exp` is our own vectorised Cephes-style
 * polynomial (about 2 ulp in float32), because libm's expf does not vectorise.
 */
#include "native_vec.h"

/* Mamba-1 selective scan, forward.
 * u, dt (Bsz, L, D); At (N, D) = A transposed; Bm, Cm (Bsz, L, N); y (Bsz, L, D) out;
 * ckpt (Bsz, nck, N, D) out with nck = ceil(L / K) + 1: ckpt[c] is the state before step c*K,
 * the last one the final state. */
void selective_fwd(const float *u, const float *dt, const float *At, const float *Bm,
                   const float *Cm, float *y, float *ckpt, int Bsz, int L, int D, int N, int K) {
    int nck = (L + K - 1) / K + 1;
    vf *h = aligned_alloc(sizeof(vf), sizeof(vf) * N);
    vf *a = aligned_alloc(sizeof(vf), sizeof(vf) * N);
    for (int b = 0; b < Bsz; b++) {
        for (int d0 = 0; d0 < D; d0 += W) {
            for (int n = 0; n < N; n++) {
                h[n] = splat(0.0f);
                a[n] = load(At + (size_t)n * D + d0);
            }
            for (int t = 0; t < L; t++) {
                if (t % K == 0) {
                    float *ck = ckpt + ((size_t)(b * nck + t / K) * N) * D + d0;
                    for (int n = 0; n < N; n++) store(ck + (size_t)n * D, h[n]);
                }
                size_t row = ((size_t)b * L + t) * D + d0;
                const float *Bt = Bm + ((size_t)b * L + t) * N, *Ct = Cm + ((size_t)b * L + t) * N;
                vf dtv = load(dt + row), duv = dtv * load(u + row), yv = splat(0.0f);
                for (int n = 0; n < N; n++) {
                    h[n] = exp_approx(dtv * a[n]) * h[n] + duv * Bt[n];
                    yv += h[n] * Ct[n];
                }
                store(y + row, yv);
            }
            float *ck = ckpt + ((size_t)(b * nck + nck - 1) * N) * D + d0;
            for (int n = 0; n < N; n++) store(ck + (size_t)n * D, h[n]);
        }
    }
    free(h);
    free(a);
}

/* Mamba-1 selective scan, backward: recompute each chunk's states from its checkpoint, run
 * the adjoint g_t = C_t y'_t + exp(Δ_{t+1} A) g_{t+1} backwards and reduce every gradient.
 * gy (Bsz, L, D) in; gu, gdt (Bsz, L, D), gAt (N, D), gB, gC (Bsz, L, N) out. */
void selective_bwd(const float *u, const float *dt, const float *At, const float *Bm,
                   const float *Cm, const float *ckpt, const float *gy, float *gu, float *gdt,
                   float *gAt, float *gB, float *gC, int Bsz, int L, int D, int N, int K) {
    /* Loop order batch -> chunk (backwards) -> channel block, so the dB and dC sums over
     * channels stay vectors for the whole chunk and are reduced across lanes once per chunk. */
    int nck = (L + K - 1) / K + 1, blocks = D / W;
    vf *hs = aligned_alloc(sizeof(vf), sizeof(vf) * (size_t)(K + 1) * N); /* hs[k+1]: after step k */
    vf *as = aligned_alloc(sizeof(vf), sizeof(vf) * (size_t)K * N);       /* the chunk's decays */
    vf *g = aligned_alloc(sizeof(vf), sizeof(vf) * (size_t)blocks * N);   /* exp(Δ_{t+1} A) g_{t+1} */
    vf *gA = aligned_alloc(sizeof(vf), sizeof(vf) * N); /* dA of one block and chunk */
    double *gAd = calloc((size_t)D * N, sizeof(double)); /* dA summed over chunks, (blocks, N, W) */
    vf *gBv = aligned_alloc(sizeof(vf), sizeof(vf) * (size_t)K * N);      /* dB, dC lane sums */
    vf *gCv = aligned_alloc(sizeof(vf), sizeof(vf) * (size_t)K * N);
    for (int b = 0; b < Bsz; b++) {
        for (int i = 0; i < blocks * N; i++) g[i] = splat(0.0f);
        for (int c = (L + K - 1) / K - 1; c >= 0; c--) {
            int t0 = c * K, t1 = t0 + K < L ? t0 + K : L;
            for (int i = 0; i < K * N; i++) gBv[i] = gCv[i] = splat(0.0f);
            for (int blk = 0; blk < blocks; blk++) {
                int d0 = blk * W;
                vf *gb = g + (size_t)blk * N, *gAb = gA;
                for (int n = 0; n < N; n++) gA[n] = splat(0.0f);
                const float *ck = ckpt + ((size_t)(b * nck + c) * N) * D + d0;
                for (int n = 0; n < N; n++) hs[n] = load(ck + (size_t)n * D);
                for (int t = t0; t < t1; t++) { /* recompute states and decays */
                    int k = t - t0;
                    size_t row = ((size_t)b * L + t) * D + d0;
                    const float *Bt = Bm + ((size_t)b * L + t) * N;
                    vf dtv = load(dt + row), duv = dtv * load(u + row);
                    const vf *hp = hs + (size_t)k * N;
                    vf *hc = hs + (size_t)(k + 1) * N, *ac = as + (size_t)k * N;
                    for (int n = 0; n < N; n++) {
                        ac[n] = exp_approx(dtv * load(At + (size_t)n * D + d0));
                        hc[n] = ac[n] * hp[n] + duv * Bt[n];
                    }
                }
                for (int t = t1 - 1; t >= t0; t--) { /* adjoint, backwards in time */
                    int k = t - t0;
                    size_t row = ((size_t)b * L + t) * D + d0;
                    size_t brow = ((size_t)b * L + t) * N;
                    const float *Bt = Bm + brow, *Ct = Cm + brow;
                    vf dtv = load(dt + row), uv = load(u + row), gyv = load(gy + row);
                    vf duv = dtv * uv, gdu = splat(0.0f), gz = splat(0.0f);
                    const vf *hp = hs + (size_t)k * N, *hc = hs + (size_t)(k + 1) * N;
                    const vf *ac = as + (size_t)k * N;
                    vf *gBk = gBv + (size_t)k * N, *gCk = gCv + (size_t)k * N;
                    for (int n = 0; n < N; n++) {
                        vf gt = gb[n] + gyv * Ct[n]; /* dL/dh_t */
                        gCk[n] += gyv * hc[n];
                        gBk[n] += gt * duv;
                        gdu += gt * Bt[n];
                        vf z = gt * hp[n] * ac[n]; /* dL/d(Δ_t A) */
                        vf a_n = load(At + (size_t)n * D + d0);
                        gz += z * a_n;
                        gAb[n] += z * dtv;
                        gb[n] = ac[n] * gt;
                    }
                    store(gu + row, gdu * dtv);
                    store(gdt + row, gz + gdu * uv);
                }
                double *acc = gAd + (size_t)blk * N * W;
                for (int n = 0; n < N; n++)
                    for (int w = 0; w < W; w++) acc[n * W + w] += gA[n][w];
            }
            for (int t = t0; t < t1; t++) {
                size_t brow = ((size_t)b * L + t) * N;
                for (int n = 0; n < N; n++) {
                    gB[brow + n] = hsum(gBv[(size_t)(t - t0) * N + n]);
                    gC[brow + n] = hsum(gCv[(size_t)(t - t0) * N + n]);
                }
            }
        }
    }
    for (int blk = 0; blk < blocks; blk++)
        for (int n = 0; n < N; n++)
            for (int w = 0; w < W; w++)
                gAt[(size_t)n * D + blk * W + w] = (float)gAd[((size_t)blk * N + n) * W + w];
    free(hs);
    free(as);
    free(g);
    free(gA);
    free(gAd);
    free(gBv);
    free(gCv);
}

/* Scalar-transition (SSD) scan: Mamba-2 and Mamba-3. Per head h (group g = h / (H / G)) and
 * step t, one transition a_t per head and an input weight d_t:
 *     S_t = a_t S_{t-1} + (d_t x_t) B_tᵀ (P x N),   y_t = S_t C_t.
 * Two ways to give them: Mamba-2's (dt, A), a_t = exp(Δ_t A_h) and d_t = Δ_t, computed here
 * (alpha NULL); or alpha, a_t given as a number of any sign (Grazzi's 2 exp(ΔA) − 1,
 * Mamba-3's data-dependent decay) with d_t = 1, the caller having scaled x (dt, A NULL).
 * Lanes run over W head channels p, so the C readout needs no cross-lane sum. */
static inline float ssd_weight(const float *dt, const float *alpha, size_t hrow) {
    return alpha ? 1.0f : dt[hrow];
}

static inline float ssd_decay(const float *A, const float *alpha, size_t hrow, int h, float d) {
    return alpha ? alpha[hrow] : expf(d * A[h]);
}

/* Forward. x (Bsz, L, H, P) with P a multiple of W (the caller pads); dt (Bsz, L, H) and
 * A (H), or alpha (Bsz, L, H); Bm, Cm (Bsz, L, G, N); y (Bsz, L, H, P) out;
 * ckpt (Bsz, nck, H * P / W, N, W) out. */
void ssd_fwd(const float *x, const float *dt, const float *A, const float *alpha,
             const float *Bm, const float *Cm, float *y, float *ckpt, int Bsz, int L, int H,
             int P, int G, int N, int K) {
    int nck = (L + K - 1) / K + 1, pb = P / W, blocks = H * pb;
    vf *S = aligned_alloc(sizeof(vf), sizeof(vf) * N);
    for (int b = 0; b < Bsz; b++) {
        for (int blk = 0; blk < blocks; blk++) {
            int h = blk / pb, p0 = (blk % pb) * W, g = h / (H / G);
            for (int n = 0; n < N; n++) S[n] = splat(0.0f);
            for (int t = 0; t < L; t++) {
                if (t % K == 0) {
                    float *ck = ckpt + (((size_t)(b * nck + t / K) * blocks + blk) * N) * W;
                    memcpy(ck, S, sizeof(vf) * N);
                }
                size_t hrow = ((size_t)b * L + t) * H + h, xrow = hrow * P + p0;
                float d = ssd_weight(dt, alpha, hrow), a = ssd_decay(A, alpha, hrow, h, d);
                const float *Bt = Bm + (((size_t)b * L + t) * G + g) * N;
                const float *Ct = Cm + (((size_t)b * L + t) * G + g) * N;
                vf dx = load(x + xrow) * d, yv = splat(0.0f);
                for (int n = 0; n < N; n++) {
                    S[n] = a * S[n] + dx * Bt[n];
                    yv += S[n] * Ct[n];
                }
                store(y + xrow, yv);
            }
            memcpy(ckpt + (((size_t)(b * nck + nck - 1) * blocks + blk) * N) * W, S,
                   sizeof(vf) * N);
        }
    }
    free(S);
}

/* SSD backward: recompute each chunk's states from its checkpoint, then the adjoint
 * G_t = dy_t C_tᵀ + a_{t+1} G_{t+1} backwards, from G_L = the final state's gradient.
 * gy (Bsz, L, H, P), gS (Bsz, H * P / W, N, W) in; gx (Bsz, L, H, P), gB, gC (Bsz, L, G, N)
 * out, and gdt (Bsz, L, H), gA (H) or galpha (Bsz, L, H), as the forward was given. */
void ssd_bwd(const float *x, const float *dt, const float *A, const float *alpha,
             const float *Bm, const float *Cm, const float *ckpt, const float *gy,
             const float *gS, float *gx, float *gdt, float *gA, float *galpha, float *gB,
             float *gC, int Bsz, int L, int H, int P, int G, int N, int K) {
    int nck = (L + K - 1) / K + 1, pb = P / W, blocks = H * pb;
    vf *hs = aligned_alloc(sizeof(vf), sizeof(vf) * (size_t)(K + 1) * N);
    vf *g = aligned_alloc(sizeof(vf), sizeof(vf) * (size_t)blocks * N); /* a_{t+1} G_{t+1} */
    vf *gBv = aligned_alloc(sizeof(vf), sizeof(vf) * (size_t)K * G * N);
    vf *gCv = aligned_alloc(sizeof(vf), sizeof(vf) * (size_t)K * G * N);
    double *gAd = calloc((size_t)H, sizeof(double));
    memset(alpha ? galpha : gdt, 0, sizeof(float) * (size_t)Bsz * L * H);
    for (int b = 0; b < Bsz; b++) {
        memcpy(g, gS + (size_t)b * blocks * N * W, sizeof(vf) * (size_t)blocks * N);
        for (int c = (L + K - 1) / K - 1; c >= 0; c--) {
            int t0 = c * K, t1 = t0 + K < L ? t0 + K : L;
            for (int i = 0; i < K * G * N; i++) gBv[i] = gCv[i] = splat(0.0f);
            for (int blk = 0; blk < blocks; blk++) {
                int h = blk / pb, p0 = (blk % pb) * W, gr = h / (H / G);
                vf *gb = g + (size_t)blk * N;
                memcpy(hs, ckpt + (((size_t)(b * nck + c) * blocks + blk) * N) * W,
                       sizeof(vf) * N);
                for (int t = t0; t < t1; t++) { /* recompute the chunk's states */
                    size_t hrow = ((size_t)b * L + t) * H + h;
                    float d = ssd_weight(dt, alpha, hrow), a = ssd_decay(A, alpha, hrow, h, d);
                    const float *Bt = Bm + (((size_t)b * L + t) * G + gr) * N;
                    vf dx = load(x + hrow * P + p0) * d;
                    const vf *hp = hs + (size_t)(t - t0) * N;
                    vf *hc = hs + (size_t)(t - t0 + 1) * N;
                    for (int n = 0; n < N; n++) hc[n] = a * hp[n] + dx * Bt[n];
                }
                for (int t = t1 - 1; t >= t0; t--) { /* adjoint, backwards in time */
                    int k = t - t0;
                    size_t hrow = ((size_t)b * L + t) * H + h, xrow = hrow * P + p0;
                    size_t brow = (((size_t)b * L + t) * G + gr) * N;
                    float d = ssd_weight(dt, alpha, hrow), a = ssd_decay(A, alpha, hrow, h, d);
                    const float *Bt = Bm + brow, *Ct = Cm + brow;
                    vf xv = load(x + xrow), dx = xv * d, gyv = load(gy + xrow);
                    vf gdx = splat(0.0f), gda = splat(0.0f);
                    const vf *hp = hs + (size_t)k * N, *hc = hs + (size_t)(k + 1) * N;
                    vf *gBk = gBv + ((size_t)k * G + gr) * N, *gCk = gCv + ((size_t)k * G + gr) * N;
                    for (int n = 0; n < N; n++) {
                        vf gt = gb[n] + gyv * Ct[n]; /* dL/dS_t */
                        gCk[n] += gyv * hc[n];
                        gBk[n] += gt * dx;
                        gdx += gt * Bt[n];
                        gda += gt * hp[n];
                        gb[n] = a * gt;
                    }
                    store(gx + xrow, gdx * d);
                    if (alpha) { /* summed over the head's channel blocks */
                        galpha[hrow] += hsum(gda);
                    } else {
                        float da = hsum(gda) * a; /* dL/d(Δ_t A_h) */
                        gdt[hrow] += da * A[h] + hsum(gdx * xv);
                        gAd[h] += (double)da * d;
                    }
                }
            }
            for (int t = t0; t < t1; t++) {
                size_t brow = ((size_t)b * L + t) * G * N;
                for (int i = 0; i < G * N; i++) {
                    gB[brow + i] = hsum(gBv[(size_t)(t - t0) * G * N + i]);
                    gC[brow + i] = hsum(gCv[(size_t)(t - t0) * G * N + i]);
                }
            }
        }
    }
    if (!alpha)
        for (int h = 0; h < H; h++) gA[h] = (float)gAd[h];
    free(hs);
    free(g);
    free(gBv);
    free(gCv);
    free(gAd);
}

/* Depthwise causal convolution over time followed by SiLU, forward:
 * y[b,t,c] = silu(bias[c] + Σ_k w[k,c] x[b, t - (Kw-1) + k, c]) (zeros before t = 0).
 * x, y (Bsz, L, C) with C a multiple of W (the caller pads); w (Kw, C); bias (C). */
void conv_silu_fwd(const float *x, const float *w, const float *bias, float *y, int Bsz, int L,
                   int C, int Kw) {
    for (int b = 0; b < Bsz; b++)
        for (int t = 0; t < L; t++)
            for (int c0 = 0; c0 < C; c0 += W) {
                vf acc = load(bias + c0);
                for (int k = 0; k < Kw; k++) {
                    int tt = t - (Kw - 1) + k;
                    if (tt >= 0) acc += load(w + (size_t)k * C + c0) * load(x + ((size_t)b * L + tt) * C + c0);
                }
                store(y + ((size_t)b * L + t) * C + c0, acc / (splat(1.0f) + exp_approx(-acc)));
            }
}

/* Its backward: gpre = gy ⊙ silu'(pre) (pre recomputed) into the caller's buffer, then
 * gx[t] = Σ_k w[k] gpre[t + Kw-1-k], gw[k] = Σ_{b,t} gpre[t] x[t-(Kw-1)+k], gbias = Σ gpre
 * (the sums over b and t in double). */
void conv_silu_bwd(const float *x, const float *w, const float *bias, const float *gy,
                   float *gpre, float *gx, float *gw, float *gbias, int Bsz, int L, int C,
                   int Kw) {
    double *acc_w = calloc((size_t)Kw * C, sizeof(double)), *acc_b = calloc((size_t)C, sizeof(double));
    vf *part = aligned_alloc(sizeof(vf), sizeof(vf) * (size_t)(Kw + 1));
    for (int b = 0; b < Bsz; b++) {
        for (int t = 0; t < L; t++)
            for (int c0 = 0; c0 < C; c0 += W) {
                vf pre = load(bias + c0);
                for (int k = 0; k < Kw; k++) {
                    int tt = t - (Kw - 1) + k;
                    if (tt >= 0) pre += load(w + (size_t)k * C + c0) * load(x + ((size_t)b * L + tt) * C + c0);
                }
                vf sg = splat(1.0f) / (splat(1.0f) + exp_approx(-pre));
                size_t row = ((size_t)b * L + t) * C + c0;
                store(gpre + row, load(gy + row) * sg * (splat(1.0f) + pre * (splat(1.0f) - sg)));
            }
        for (int c0 = 0; c0 < C; c0 += W) {
            for (int k = 0; k <= Kw; k++) part[k] = splat(0.0f);
            for (int t = 0; t < L; t++) {
                vf gx_t = splat(0.0f), gp = load(gpre + ((size_t)b * L + t) * C + c0);
                for (int k = 0; k < Kw; k++) {
                    int ts = t + (Kw - 1) - k; /* output step that read x[t] through w[k] */
                    if (ts < L) gx_t += load(w + (size_t)k * C + c0) * load(gpre + ((size_t)b * L + ts) * C + c0);
                    int tx = t - (Kw - 1) + k; /* input step that output t read through w[k] */
                    if (tx >= 0) part[k] += gp * load(x + ((size_t)b * L + tx) * C + c0);
                }
                part[Kw] += gp;
                store(gx + ((size_t)b * L + t) * C + c0, gx_t);
            }
            for (int k = 0; k < Kw; k++)
                for (int i = 0; i < W; i++) acc_w[(size_t)k * C + c0 + i] += part[k][i];
            for (int i = 0; i < W; i++) acc_b[c0 + i] += part[Kw][i];
        }
    }
    for (size_t i = 0; i < (size_t)Kw * C; i++) gw[i] = (float)acc_w[i];
    for (int c = 0; c < C; c++) gbias[c] = (float)acc_b[c];
    free(acc_w);
    free(acc_b);
    free(part);
}

/* LRU: x_t = λ x_{t-1} + v_t, x (Bsz, L, N) complex (re, im interleaved) written from v in
 * one pass (no copy first). */
void lru_fwd(const float *v, float *x, const float *lam_re, const float *lam_im, int Bsz, int L,
             int N) {
    for (int b = 0; b < Bsz; b++) {
        const float *vb = v + (size_t)b * L * N * 2;
        float *xb = x + (size_t)b * L * N * 2;
        memcpy(xb, vb, sizeof(float) * 2 * N);
        for (int t = 1; t < L; t++) {
            const float *p = xb + (size_t)(t - 1) * N * 2, *in = vb + (size_t)t * N * 2;
            float *c = xb + (size_t)t * N * 2;
            for (int n = 0; n < N; n++) {
                float pr = p[2 * n], pi = p[2 * n + 1];
                c[2 * n] = in[2 * n] + lam_re[n] * pr - lam_im[n] * pi;
                c[2 * n + 1] = in[2 * n + 1] + lam_re[n] * pi + lam_im[n] * pr;
            }
        }
    }
}

/* LRU backward: g_t = gx_t + conj(λ) g_{t+1} (dL/dv, written into g from gx in one pass) and
 * glam = Σ_{b, t>=1} conj(x_{t-1}) g_t (N complex; float per batch row, double across). */
void lru_bwd(const float *gx, float *g, const float *x, const float *lam_re,
             const float *lam_im, float *glam, int Bsz, int L, int N) {
    double *acc = calloc((size_t)N * 2, sizeof(double));
    float *part = malloc(sizeof(float) * (size_t)N * 2);
    for (int b = 0; b < Bsz; b++) {
        const float *gxb = gx + (size_t)b * L * N * 2, *xb = x + (size_t)b * L * N * 2;
        float *gb = g + (size_t)b * L * N * 2;
        memset(part, 0, sizeof(float) * (size_t)N * 2);
        memcpy(gb + (size_t)(L - 1) * N * 2, gxb + (size_t)(L - 1) * N * 2, sizeof(float) * 2 * N);
        for (int t = L - 1; t >= 1; t--) {
            const float *c = gb + (size_t)t * N * 2, *xp = xb + (size_t)(t - 1) * N * 2;
            const float *in = gxb + (size_t)(t - 1) * N * 2;
            float *p = gb + (size_t)(t - 1) * N * 2;
            for (int n = 0; n < N; n++) {
                float gr = c[2 * n], gi = c[2 * n + 1], xr = xp[2 * n], xi = xp[2 * n + 1];
                part[2 * n] += xr * gr + xi * gi;
                part[2 * n + 1] += xr * gi - xi * gr;
                p[2 * n] = in[2 * n] + lam_re[n] * gr + lam_im[n] * gi; /* conj(λ) g_t */
                p[2 * n + 1] = in[2 * n + 1] + lam_re[n] * gi - lam_im[n] * gr;
            }
        }
        for (int n = 0; n < 2 * N; n++) acc[n] += part[n];
    }
    for (int n = 0; n < 2 * N; n++) glam[n] = (float)acc[n];
    free(acc);
    free(part);
}
