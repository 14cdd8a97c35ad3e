/* Causal (optionally sliding-window) softmax attention for heads of up to 8 numbers, float32,
 * forward and backward. Built with native_kernels.c into one library
 * (seqbench.architectures.scans.native); attention_native.py is the caller.
 *
 * Why: at d_model 64 the attention presets have heads of 8, where PyTorch's CPU flash kernel
 * spends most of a training step on per-block overhead (docs/performance.md). With so small a
 * head, one vector holds the scores of W rows (or W keys), and the whole head of the other
 * side is HD broadcast numbers: every score is HD multiply-adds on whole vectors and nothing
 * is reduced across lanes. As in flash attention nothing of size L x L is kept: the forward
 * saves each row's log-sum-exp and the backward recomputes the scores.
 *
 * Three passes, each with its accumulator in registers:
 *   attn_fwd      W query rows in the lanes, keys one at a time: row max, then p and p v;
 *   attn_bwd_dq   W query rows in the lanes: dq = scale sum_j ds_ij k_j;
 *   attn_bwd_dkv  W keys in the lanes, query rows one at a time: dk, dv summed over the rows
 *                 of every query head of the key's group.
 * with p = exp(s - lse), dp = do . v, ds = p (dp - do . o), s = scale q . k.
 *
 * Layouts (contiguous), HD = 8, Lp = L rounded up to W: "rows" (B, heads, L, HD), "transposed"
 * (B, heads, HD, Lp), per-row vectors (B, H, Lp). The H / Hkv query heads of one kv head are
 * adjacent (grouped-query attention). Work is split into units of one (batch, kv head), [u0, u1)
 * per call, so callers on several threads write disjoint outputs. window <= 0: full causal;
 * else query i sees keys i - window + 1 .. i. Lanes of padding rows (i >= L) are computed and
 * ignored by the caller. */
#include "native_vec.h"

#define HD 8 /* the head size; the caller zero-pads smaller heads (zeros change no score) */

static const vi IOTA = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

static inline vf select(vi keep, vf a, vf b) { return (vf)(((vi)a & keep) | ((vi)b & ~keep)); }
static inline vf masked(vf x, vi keep) { return (vf)((vi)x & keep); }

/* Lanes i = first + lane that see key j: j <= i and, with a window, j > i - window. */
static inline vi rows_seeing(int j, int first, int window) {
    vi i = IOTA + first;
    vi keep = i >= j;
    return window > 0 ? keep & (i < j + window) : keep;
}

/* Lanes j = first + lane that row i sees. */
static inline vi keys_seen(int i, int first, int window) {
    vi j = IOTA + first;
    vi keep = j <= i;
    return window > 0 ? keep & (j > i - window) : keep;
}

/* The keys every lane of query block r0 .. r0+W-1 sees: no mask needed there (the bulk). */
static inline int all_rows_from(int r0, int window) { return window > 0 ? r0 + W - window : 0; }

/* The query rows that see every key of block j0 .. j0+W-1. */
static inline int all_keys_until(int j0, int window) {
    return window > 0 ? j0 + window - 1 : 1 << 30;
}

#define INLINE static inline __attribute__((always_inline))

static inline int max_int(int a, int b) { return a > b ? a : b; }
static inline int min_int(int a, int b) { return a < b ? a : b; }

/* The keys query block r0 .. r0+W-1 sees at all, jlo .. jhi. */
static inline void block_keys(int r0, int L, int window, int *jlo, int *jhi) {
    *jlo = window > 0 ? max_int(0, r0 - window + 1) : 0;
    *jhi = min_int(r0 + W - 1, L - 1);
}

/* Offset of query head g of unit u (batch u / Hkv, kv head u % Hkv). */
static inline size_t head_of(int u, int g, int H, int Hkv) {
    int G = H / Hkv;
    return (size_t)(u / Hkv) * H + (size_t)(u % Hkv) * G + g;
}

/* Scores of the W rows in qv (pre-scaled, transposed) against key row kj. */
static inline vf row_scores(const vf *qv, const float *kj) {
    vf s = splat(0.0f);
    for (int d = 0; d < HD; d++) s += qv[d] * kj[d];
    return s;
}

/* One key's share of W rows' p and p v; `all`: every row sees it (no mask). */
INLINE void fwd_key(const vf *qv, const float *K, const float *V, int j, vf m, vi keep,
                    const int all, vf *total, vf *acc) {
    const float *vj = V + (size_t)j * HD;
    vf p = exp_approx(row_scores(qv, K + (size_t)j * HD) - m);
    if (!all) p = masked(p, keep);
    *total += p;
    for (int d = 0; d < HD; d++) acc[d] += p * vj[d];
}

/* o = softmax(s) v. qt (B, H, HD, Lp); k, v rows (B, Hkv, L, HD); ot (B, H, HD, Lp) and
 * lse (B, H, Lp) out. */
void attn_fwd(const float *qt, const float *k, const float *v, float *ot, float *lse, int H,
              int Hkv, int L, int Lp, float scale, int window, int u0, int u1) {
    vf qv[HD], acc[HD];
    for (int u = u0; u < u1; u++) {
        const float *K = k + (size_t)u * L * HD, *V = v + (size_t)u * L * HD;
        for (int g = 0; g < H / Hkv; g++) {
            size_t head = head_of(u, g, H, Hkv);
            const float *Qt = qt + head * HD * Lp;
            float *Ot = ot + head * HD * Lp, *LSE = lse + head * Lp;
            for (int r0 = 0; r0 < L; r0 += W) {
                for (int d = 0; d < HD; d++) qv[d] = load(Qt + (size_t)d * Lp + r0) * scale;
                int jlo, jhi;
                block_keys(r0, L, window, &jlo, &jhi);
                int flo = all_rows_from(r0, window);
                vf m = splat(-INFINITY);
                for (int j = jlo; j <= jhi; j++) {
                    vf s = row_scores(qv, K + (size_t)j * HD);
                    if (j < flo || j > r0) s = select(rows_seeing(j, r0, window), s, splat(-INFINITY));
                    m = select(s > m, s, m);
                }
                vf total = splat(0.0f);
                for (int d = 0; d < HD; d++) acc[d] = splat(0.0f);
                for (int j = jlo; j <= jhi; j++) {
                    if (j < flo || j > r0)
                        fwd_key(qv, K, V, j, m, rows_seeing(j, r0, window), 0, &total, acc);
                    else
                        fwd_key(qv, K, V, j, m, rows_seeing(j, r0, window), 1, &total, acc);
                }
                for (int d = 0; d < HD; d++) store(Ot + (size_t)d * Lp + r0, acc[d] / total);
                for (int w = 0; w < W; w++) LSE[r0 + w] = m[w] + logf(total[w]);
            }
        }
    }
}

/* One key's share of W rows' dq. */
INLINE void dq_key(const vf *qv, const vf *dov, const float *K, const float *V, int j, vf lse_r,
                   vf delta_r, vi keep, const int all, vf *acc) {
    const float *kj = K + (size_t)j * HD, *vj = V + (size_t)j * HD;
    vf p = exp_approx(row_scores(qv, kj) - lse_r);
    if (!all) p = masked(p, keep);
    vf ds = p * (row_scores(dov, vj) - delta_r);
    for (int d = 0; d < HD; d++) acc[d] += ds * kj[d];
}

/* dq. qt, dot (B, H, HD, Lp); k, v rows; lse, delta (B, H, Lp); dqt (B, H, HD, Lp) out. */
void attn_bwd_dq(const float *qt, const float *dot, const float *k, const float *v,
                 const float *lse, const float *delta, float *dqt, int H, int Hkv, int L, int Lp,
                 float scale, int window, int u0, int u1) {
    vf qv[HD], dov[HD], acc[HD];
    for (int u = u0; u < u1; u++) {
        const float *K = k + (size_t)u * L * HD, *V = v + (size_t)u * L * HD;
        for (int g = 0; g < H / Hkv; g++) {
            size_t head = head_of(u, g, H, Hkv);
            const float *Qt = qt + head * HD * Lp, *dOt = dot + head * HD * Lp;
            float *dQt = dqt + head * HD * Lp;
            for (int r0 = 0; r0 < L; r0 += W) {
                for (int d = 0; d < HD; d++) {
                    qv[d] = load(Qt + (size_t)d * Lp + r0) * scale;
                    dov[d] = load(dOt + (size_t)d * Lp + r0);
                    acc[d] = splat(0.0f);
                }
                vf lse_r = load(lse + head * Lp + r0), delta_r = load(delta + head * Lp + r0);
                int jlo, jhi;
                block_keys(r0, L, window, &jlo, &jhi);
                int flo = all_rows_from(r0, window);
                for (int j = jlo; j <= jhi; j++) {
                    vi keep = rows_seeing(j, r0, window);
                    if (j < flo || j > r0)
                        dq_key(qv, dov, K, V, j, lse_r, delta_r, keep, 0, acc);
                    else
                        dq_key(qv, dov, K, V, j, lse_r, delta_r, keep, 1, acc);
                }
                for (int d = 0; d < HD; d++) store(dQt + (size_t)d * Lp + r0, acc[d] * scale);
            }
        }
    }
}

/* One query row's share of W keys' dk and dv. */
INLINE void dkv_row(const vf *kv, const vf *vv, const float *Q, const float *dO, int i,
                    float lse_i, float delta_i, vi keep, const int all, vf *dk, vf *dv) {
    const float *qi = Q + (size_t)i * HD, *doi = dO + (size_t)i * HD;
    vf p = exp_approx(row_scores(kv, qi) - lse_i);
    if (!all) p = masked(p, keep);
    vf ds = p * (row_scores(vv, doi) - delta_i);
    for (int d = 0; d < HD; d++) {
        dk[d] += ds * qi[d];
        dv[d] += p * doi[d];
    }
}

/* dk, dv. q, dout rows (B, H, L, HD); kt, vt (B, Hkv, HD, Lp); lse, delta (B, H, Lp);
 * dkt, dvt (B, Hkv, HD, Lp) out (every lane written; padding keys get zeros). */
void attn_bwd_dkv(const float *q, const float *dout, const float *kt, const float *vt,
                  const float *lse, const float *delta, float *dkt, float *dvt, int H, int Hkv,
                  int L, int Lp, float scale, int window, int u0, int u1) {
    vf kv[HD], vv[HD], dk[HD], dv[HD];
    for (int u = u0; u < u1; u++) {
        const float *Kt = kt + (size_t)u * HD * Lp, *Vt = vt + (size_t)u * HD * Lp;
        float *dKt = dkt + (size_t)u * HD * Lp, *dVt = dvt + (size_t)u * HD * Lp;
        for (int j0 = 0; j0 < L; j0 += W) {
            for (int d = 0; d < HD; d++) {
                kv[d] = load(Kt + (size_t)d * Lp + j0) * scale;
                vv[d] = load(Vt + (size_t)d * Lp + j0);
                dk[d] = dv[d] = splat(0.0f);
            }
            int ihi = window > 0 ? min_int(L - 1, j0 + W - 2 + window) : L - 1;
            for (int g = 0; g < H / Hkv; g++) {
                size_t head = head_of(u, g, H, Hkv);
                const float *Q = q + head * L * HD, *dO = dout + head * L * HD;
                const float *LSE = lse + head * Lp, *DELTA = delta + head * Lp;
                int fhi = all_keys_until(j0, window);
                for (int i = j0; i <= ihi; i++) {
                    vi keep = keys_seen(i, j0, window);
                    if (i < j0 + W - 1 || i > fhi)
                        dkv_row(kv, vv, Q, dO, i, LSE[i], DELTA[i], keep, 0, dk, dv);
                    else
                        dkv_row(kv, vv, Q, dO, i, LSE[i], DELTA[i], keep, 1, dk, dv);
                }
            }
            for (int d = 0; d < HD; d++) {
                store(dKt + (size_t)d * Lp + j0, dk[d] * scale);
                store(dVt + (size_t)d * Lp + j0, dv[d]);
            }
        }
    }
}
