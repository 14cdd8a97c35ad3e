/* Mamba-1's output tail, (y + u D) SiLU(z), float32, forward and backward, one pass each. Built
 * with the other C kernels into one library (seqbench.architectures.scans.native); gate_native.py
 * is the caller.
 *
 * Why: PyTorch runs the tail as four eager passes forward (u D, the add, SiLU, the product) and
 * about six backward, each over a (B, L, d_inner) tensor, at a cost near the scan's own. Here a
 * row is read once and written once each way; nothing but the inputs is kept for the backward.
 *
 *   forward   s = y + u D,  out = s z sigmoid(z)
 *   backward  gs = gout z sigmoid(z):  gy = gs,  gu = gs D,  gD = sum over rows of gs u,
 *             gz = gout s sigmoid(z) (1 + z (1 - sigmoid(z)))
 *
 * y, u and z are rows of D channels at their own row strides (views into the scan's padded
 * output, the padded conv output and the in-projection); out and the gradients are contiguous.
 * Rows are split into units of ROW_UNIT rows (native_vec.h), and gD is summed per unit into
 * gD_parts (units, D) for the caller to add up. */
#include "native_vec.h"


void skip_gate_fwd(const float *y, const float *u, const float *z, const float *Dskip, float *out,
                   int R, int D, int ys, int us, int zs, int u0, int u1) {
    int Dv = D - D % W;
    for (int r = u0 * ROW_UNIT; r < rows_end(u1, R); r++) {
        const float *yr = y + (size_t)r * ys, *ur = u + (size_t)r * us, *zr = z + (size_t)r * zs;
        float *o = out + (size_t)r * D;
        for (int d = 0; d < Dv; d += W) {
            vf zv = load(zr + d);
            store(o + d, (load(yr + d) + load(ur + d) * load(Dskip + d)) * zv * sigmoid_v(zv));
        }
        for (int d = Dv; d < D; d++) o[d] = (yr[d] + ur[d] * Dskip[d]) * zr[d] * sigmoid_s(zr[d]);
    }
}

void skip_gate_bwd(const float *gout, const float *y, const float *u, const float *z,
                   const float *Dskip, float *gy, float *gu, float *gz, float *gD_parts, int R,
                   int D, int ys, int us, int zs, int u0, int u1) {
    int Dv = D - D % W;
    for (int unit = u0; unit < u1; unit++) {
        float *gD = gD_parts + (size_t)unit * D;
        memset(gD, 0, sizeof(float) * (size_t)D);
        for (int r = unit * ROW_UNIT; r < rows_end(unit + 1, R); r++) {
            const float *yr = y + (size_t)r * ys, *ur = u + (size_t)r * us;
            const float *zr = z + (size_t)r * zs, *go = gout + (size_t)r * D;
            size_t off = (size_t)r * D;
            for (int d = 0; d < Dv; d += W) {
                vf zv = load(zr + d), uv = load(ur + d), Dk = load(Dskip + d), sg = sigmoid_v(zv);
                vf g = load(go + d), s = load(yr + d) + uv * Dk, gs = g * zv * sg;
                store(gy + off + d, gs);
                store(gu + off + d, gs * Dk);
                store(gz + off + d, g * s * sg * (splat(1.0f) + zv * (splat(1.0f) - sg)));
                store(gD + d, load(gD + d) + gs * uv);
            }
            for (int d = Dv; d < D; d++) {
                float sg = sigmoid_s(zr[d]), s = yr[d] + ur[d] * Dskip[d];
                float gs = go[d] * zr[d] * sg;
                gy[off + d] = gs;
                gu[off + d] = gs * Dskip[d];
                gz[off + d] = go[d] * s * sg * (1.0f + zr[d] * (1.0f - sg));
                gD[d] += gs * ur[d];
            }
        }
    }
}
