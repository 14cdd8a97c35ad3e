/* RMSNorm, float32, forward and backward, one pass each over a row. Built with the other C
 * kernels into one library (seqbench.architectures.scans.native); norm_native.py is the caller.
 *
 * Why: every block norms its input twice and the model once more at the end, and PyTorch runs
 * RMSNorm as about six eager passes forward and ten backward (pow, mean, add, rsqrt, two muls,
 * and their gradients), each a full read and write of a (B, L, D) tensor. Here a row is read
 * once and written once each way.
 *
 *   forward   rstd = 1 / sqrt(mean(x^2) + eps),  n = x rstd,  y = n w
 *   backward  g = gy w,  gx = rstd (g - n mean(g n)),  gw = sum over rows of gy n
 *
 * n (the normalised row) is written out and kept by the caller, as PyTorch's path keeps it,
 * so that a measured step saves the bytes the profiler counts on paper for that path.
 *
 * Rows are split into units of ROW_UNIT rows (native_vec.h); the weight gradient is summed per
 * unit into gw_parts (units, D) and the caller sums the parts.
 * D need not be a multiple of W: the last partial block runs in scalar code. */
#include "native_vec.h"


void rmsnorm_fwd(const float *x, const float *w, float *n, float *y, float *rstd, int R, int D,
                 float eps, int u0, int u1) {
    int Dv = D - D % W;
    for (int r = u0 * ROW_UNIT; r < rows_end(u1, R); r++) {
        const float *xr = x + (size_t)r * D;
        vf acc = splat(0.0f);
        for (int d = 0; d < Dv; d += W) {
            vf v = load(xr + d);
            acc += v * v;
        }
        float ss = hsum(acc);
        for (int d = Dv; d < D; d++) ss += xr[d] * xr[d];
        float s = 1.0f / sqrtf(ss / (float)D + eps);
        rstd[r] = s;
        float *nr = n + (size_t)r * D, *yr = y + (size_t)r * D;
        for (int d = 0; d < Dv; d += W) {
            vf v = load(xr + d) * splat(s);
            store(nr + d, v);
            store(yr + d, v * load(w + d));
        }
        for (int d = Dv; d < D; d++) {
            nr[d] = xr[d] * s;
            yr[d] = nr[d] * w[d];
        }
    }
}

void rmsnorm_bwd(const float *gy, const float *n, const float *w, const float *rstd, float *gx,
                 float *gw_parts, int R, int D, int u0, int u1) {
    int Dv = D - D % W;
    for (int u = u0; u < u1; u++) {
        float *gw = gw_parts + (size_t)u * D;
        memset(gw, 0, sizeof(float) * (size_t)D);
        for (int r = u * ROW_UNIT; r < rows_end(u + 1, R); r++) {
            const float *gr = gy + (size_t)r * D, *nr = n + (size_t)r * D;
            vf acc = splat(0.0f);
            for (int d = 0; d < Dv; d += W) acc += load(gr + d) * load(w + d) * load(nr + d);
            float dot = hsum(acc);
            for (int d = Dv; d < D; d++) dot += gr[d] * w[d] * nr[d];
            float s = rstd[r], m = dot / (float)D;
            float *gxr = gx + (size_t)r * D;
            for (int d = 0; d < Dv; d += W) {
                vf g = load(gr + d), nv = load(nr + d);
                store(gxr + d, splat(s) * (g * load(w + d) - nv * splat(m)));
                store(gw + d, load(gw + d) + g * nv);
            }
            for (int d = Dv; d < D; d++) {
                gxr[d] = s * (gr[d] * w[d] - nr[d] * m);
                gw[d] += gr[d] * nr[d];
            }
        }
    }
}

/* The gated RMSNorm of Mamba-2/3's output, RMSNorm(y SiLU(z)) w, with a = y SiLU(z) never
 * written: the forward keeps rstd only, the backward recomputes a and SiLU(z) (in both of its
 * passes over a row) from y and z.
 *
 *   backward  ga = rstd (gout w - n mean(gout w n)),  gy = ga SiLU(z),
 *             gz = ga y sigmoid(z) (1 + z (1 - sigmoid(z))),  gw = sum of gout n */
void gated_rmsnorm_fwd(const float *y, const float *z, const float *w, float *out, float *rstd,
                       int R, int D, float eps, int u0, int u1) {
    int Dv = D - D % W;
    for (int r = u0 * ROW_UNIT; r < rows_end(u1, R); r++) {
        const float *yr = y + (size_t)r * D, *zr = z + (size_t)r * D;
        float *o = out + (size_t)r * D;
        vf acc = splat(0.0f);
        for (int d = 0; d < Dv; d += W) { /* a, kept in out until the scale is known */
            vf zv = load(zr + d), a = load(yr + d) * zv * sigmoid_v(zv);
            store(o + d, a);
            acc += a * a;
        }
        float ss = hsum(acc);
        for (int d = Dv; d < D; d++) {
            o[d] = yr[d] * zr[d] * sigmoid_s(zr[d]);
            ss += o[d] * o[d];
        }
        float s = 1.0f / sqrtf(ss / (float)D + eps);
        rstd[r] = s;
        for (int d = 0; d < Dv; d += W) store(o + d, load(o + d) * splat(s) * load(w + d));
        for (int d = Dv; d < D; d++) o[d] = o[d] * s * w[d];
    }
}

void gated_rmsnorm_bwd(const float *gout, const float *y, const float *z, const float *w,
                       const float *rstd, float *gy, float *gz, float *gw_parts, int R, int D,
                       int u0, int u1) {
    int Dv = D - D % W;
    for (int u = u0; u < u1; u++) {
        float *gw = gw_parts + (size_t)u * D;
        memset(gw, 0, sizeof(float) * (size_t)D);
        for (int r = u * ROW_UNIT; r < rows_end(u + 1, R); r++) {
            size_t off = (size_t)r * D;
            const float *go = gout + off, *yr = y + off, *zr = z + off;
            float s = rstd[r];
            vf acc = splat(0.0f);
            for (int d = 0; d < Dv; d += W) {
                vf zv = load(zr + d), n = load(yr + d) * zv * sigmoid_v(zv) * splat(s);
                acc += load(go + d) * load(w + d) * n;
            }
            float dot = hsum(acc);
            for (int d = Dv; d < D; d++) dot += go[d] * w[d] * yr[d] * zr[d] * sigmoid_s(zr[d]) * s;
            float m = dot / (float)D;
            for (int d = 0; d < Dv; d += W) {
                vf zv = load(zr + d), yv = load(yr + d), sg = sigmoid_v(zv), gate = zv * sg;
                vf n = yv * gate * splat(s), g = load(go + d);
                vf ga = splat(s) * (g * load(w + d) - n * splat(m));
                store(gy + off + d, ga * gate);
                store(gz + off + d, ga * yv * sg * (splat(1.0f) + zv * (splat(1.0f) - sg)));
                store(gw + d, load(gw + d) + g * n);
            }
            for (int d = Dv; d < D; d++) {
                float sg = sigmoid_s(zr[d]), gate = zr[d] * sg, n = yr[d] * gate * s;
                float ga = s * (go[d] * w[d] - n * m);
                gy[off + d] = ga * gate;
                gz[off + d] = ga * yr[d] * sg * (1.0f + zr[d] * (1.0f - sg));
                gw[d] += go[d] * n;
            }
        }
    }
}
