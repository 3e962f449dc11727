/* CPU kernels of vfx's TV-L1 (vfx/flow/tvl1_torch.py holds the algorithm and its reference in PyTorch).

   Built by vfx/flow/tvl1_native.py with the system C compiler on first use (about a second) and loaded
   with ctypes, so a new process starts computing at once: no torch.compile graph tracing, no inductor
   cache to load. Each function computes exactly the float operations of its PyTorch twin, in the same
   order (built with -ffp-contract=off: no fused multiply-add), so one iteration is bit-exact like the
   eager path; only the error sums of the stopping rule are accumulated differently (float lanes, then
   double), which moves a stopping decision only when an error sits within rounding of the threshold.

   Layouts (all float32, C-contiguous): flow u1, u2 and duals p11, p12, p21, p22 are [B, H+1, W+1]
   (flow in [:H, :W] with a zero row/column after it; duals in [1:, 1:] with a zero row/column before
   them); per-warp constants [B, H, W]; `active` is one byte per pair. Every function works on pairs
   [b0, b1) and rows [y0, y1) so that the caller can split the work between threads.
   The median's comparator networks are generated from vfx/flow/median.py and appended to this file. */

#include <math.h>
#include <stdint.h>
#include <string.h>

#define FLT_EPS 1.1920928955078125e-07f /* FLT_EPSILON: tvl1flow.cpp's guard on |grad I1w|^2 */
#define LANES 16

/* estimateV + divergence + estimateU (u_step_masked): u <- v + theta * div p for active pairs;
   err[b] = sum over rows [y0, y1) of |u_new - u_old|^2 (0 for inactive pairs). */
void tvl1_u_step(const uint8_t *active, float *restrict u1, float *restrict u2, const float *restrict p11,
                 const float *restrict p12, const float *restrict p21, const float *restrict p22,
                 const float *restrict i1wx, const float *restrict i1wy, const float *restrict grad,
                 const float *restrict rho_c, int64_t h, int64_t w, float l_t, float theta, int64_t b0,
                 int64_t b1, int64_t y0, int64_t y1, double *err, float *restrict scratch)
{
    const int64_t sw = w + 1, plane = (h + 1) * sw, cplane = h * w;
    for (int64_t b = b0; b < b1; ++b) {
        double total = 0.0;
        if (!active[b]) {
            err[b] = 0.0;
            continue;
        }
        for (int64_t y = y0; y < y1; ++y) {
            float *restrict a1 = u1 + b * plane + y * sw;
            float *restrict a2 = u2 + b * plane + y * sw;
            /* q[x] = p[y+1, x+1]; q[x-1] = p[y+1, x]; q[x-sw] = p[y, x+1] */
            const float *q11 = p11 + b * plane + (y + 1) * sw + 1;
            const float *q12 = p12 + b * plane + (y + 1) * sw + 1;
            const float *q21 = p21 + b * plane + (y + 1) * sw + 1;
            const float *q22 = p22 + b * plane + (y + 1) * sw + 1;
            const float *gx = i1wx + b * cplane + y * w, *gy = i1wy + b * cplane + y * w;
            const float *g2 = grad + b * cplane + y * w, *rc = rho_c + b * cplane + y * w;
            for (int64_t x = 0; x < w; ++x) {
                const float a = a1[x], c = a2[x];
                const float rho = rc[x] + (gx[x] * a + gy[x] * c);
                const float lt_grad = l_t * g2[x];
                float fi = g2[x] > FLT_EPS ? -rho / g2[x] : 0.0f;
                fi = rho > lt_grad ? -l_t : fi;
                fi = rho < -lt_grad ? l_t : fi;
                const float v1 = a + fi * gx[x];
                const float v2 = c + fi * gy[x];
                const float div1 = (q11[x] - q11[x - 1]) + (q12[x] - q12[x - sw]);
                const float div2 = (q21[x] - q21[x - 1]) + (q22[x] - q22[x - sw]);
                const float n1 = v1 + theta * div1;
                const float n2 = v2 + theta * div2;
                const float d1 = n1 - a, d2 = n2 - c;
                scratch[x] = d1 * d1 + d2 * d2;
                a1[x] = n1;
                a2[x] = n2;
            }
            /* A sequential double sum would not vectorise: LANES float partial sums, then double. */
            float lanes[LANES] = {0};
            int64_t x = 0;
            for (; x + LANES <= w; x += LANES)
                for (int k = 0; k < LANES; ++k)
                    lanes[k] += scratch[x + k];
            for (; x < w; ++x)
                lanes[0] += scratch[x];
            for (int k = 0; k < LANES; ++k)
                total += lanes[k];
        }
        err[b] = total;
    }
}

/* forwardGradient + estimateDualVariables (p_step_masked) for active pairs:
   p <- (p + taut * grad u) / (1 + taut * |grad u|), grad u = 0 across the last column / row. */
void tvl1_p_step(const uint8_t *active, const float *restrict u1, const float *restrict u2, float *restrict p11,
                 float *restrict p12, float *restrict p21, float *restrict p22, int64_t h, int64_t w, float taut,
                 int64_t b0, int64_t b1, int64_t y0, int64_t y1)
{
    const int64_t sw = w + 1, plane = (h + 1) * sw;
    for (int64_t b = b0; b < b1; ++b) {
        if (!active[b])
            continue;
        for (int64_t y = y0; y < y1; ++y) {
            const float rowmask = y < h - 1 ? 1.0f : 0.0f;
            for (int comp = 0; comp < 2; ++comp) {
                const float *restrict u = (comp ? u2 : u1) + b * plane + y * sw;
                float *restrict px = (comp ? p21 : p11) + b * plane + (y + 1) * sw + 1;
                float *restrict py = (comp ? p22 : p12) + b * plane + (y + 1) * sw + 1;
                for (int64_t x = 0; x < w; ++x) {
                    const float colmask = x < w - 1 ? 1.0f : 0.0f;
                    const float c = u[x];
                    const float ux = (u[x + 1] - c) * colmask;
                    const float uy = (u[x + sw] - c) * rowmask;
                    const float ng = 1.0f + taut * sqrtf(ux * ux + uy * uy);
                    px[x] = (px[x] + taut * ux) / ng;
                    py[x] = (py[x] + taut * uy) / ng;
                }
            }
        }
    }
}

/* cv::remap(INTER_CUBIC, BORDER_CONSTANT 0) of three images sharing the flow (warp_padded).
   u1, u2: [B, H, W]; src*: [B, (H+8) * (W+8)] zero-padded by 4 (pad_for_warp); out*: [B, H, W]. */
void tvl1_warp(const float *restrict u1, const float *restrict u2, const float *restrict src0,
               const float *restrict src1, const float *restrict src2, float *restrict out0,
               float *restrict out1, float *restrict out2, int64_t h, int64_t w, int64_t b0, int64_t b1,
               int64_t y0, int64_t y1)
{
    const int64_t pad = 4, stride = w + 2 * pad, pplane = (h + 2 * pad) * stride, cplane = h * w;
    const double a = -0.75; /* Keys, as OpenCV's interpolateCubic */
    const float *srcs[3] = {src0, src1, src2};
    float *outs[3] = {out0, out1, out2};
    for (int64_t b = b0; b < b1; ++b) {
        for (int64_t y = y0; y < y1; ++y) {
            for (int64_t x = 0; x < w; ++x) {
                const int64_t i = b * cplane + y * w + x;
                float mx = (float)x + u1[i], my = (float)y + u2[i];
                mx = mx < -8.0f ? -8.0f : (mx > (float)(w + 8) ? (float)(w + 8) : mx);
                my = my < -8.0f ? -8.0f : (my > (float)(h + 8) ? (float)(h + 8) : my);
                const float fx = floorf(mx), fy = floorf(my);
                float wx[4], wy[4];
                for (int axis = 0; axis < 2; ++axis) {
                    const double t = axis ? (double)(my - fy) : (double)(mx - fx);
                    const double t1 = t + 1.0, r = 1.0 - t;
                    const double c0 = ((a * t1 - 5.0 * a) * t1 + 8.0 * a) * t1 - 4.0 * a;
                    const double c1 = ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0;
                    const double c2 = ((a + 2.0) * r - (a + 3.0)) * r * r + 1.0;
                    const double c3 = 1.0 - c0 - c1 - c2;
                    float *wt = axis ? wy : wx;
                    wt[0] = (float)c0, wt[1] = (float)c1, wt[2] = (float)c2, wt[3] = (float)c3;
                }
                int64_t ix = (int64_t)fx, iy = (int64_t)fy;
                ix = ix < -3 ? -3 : (ix > w + 1 ? w + 1 : ix);
                iy = iy < -3 ? -3 : (iy > h + 1 ? h + 1 : iy);
                const int64_t base = b * pplane + (iy + pad - 1) * stride + (ix + pad - 1);
                for (int k = 0; k < 3; ++k) {
                    const float *s = srcs[k] + base;
                    float out = 0.0f;
                    for (int ky = 0; ky < 4; ++ky) {
                        const float *row = s + ky * stride;
                        float acc = row[0] * wx[0];
                        acc = acc + row[1] * wx[1];
                        acc = acc + row[2] * wx[2];
                        acc = acc + row[3] * wx[3];
                        out = ky ? out + acc * wy[ky] : acc * wy[ky];
                    }
                    outs[k][i] = out;
                }
            }
        }
    }
}

/* Sorted column runs of one output row: runs[r * pw + c] is the r-th smallest of the k values of
   padded column c (border replicated) around row y. Defined per k by the generated code below. */
typedef void (*column_sort_fn)(const float *u, int64_t sw, int64_t h, int64_t w, int64_t y, float *runs,
                               int64_t pw);
typedef void (*median_row_fn)(const float *runs, int64_t pw, float *out, int64_t w);

static void median_filter(int k, column_sort_fn sort_columns, median_row_fn median_row, const uint8_t *active,
                          float *u, int64_t h, int64_t w, int64_t b0, int64_t b1, float *scratch)
{
    /* scratch: k * (W + k - 1) floats of runs, then H * W of result (the filter is not in place). */
    const int64_t sw = w + 1, plane = (h + 1) * sw, pw = w + k - 1;
    float *runs = scratch, *result = scratch + k * pw;
    for (int64_t b = b0; b < b1; ++b) {
        if (!active[b])
            continue;
        float *ub = u + b * plane;
        for (int64_t y = 0; y < h; ++y) {
            sort_columns(ub, sw, h, w, y, runs, pw);
            median_row(runs, pw, result + y * w, w);
        }
        for (int64_t y = 0; y < h; ++y)
            memcpy(ub + y * sw, result + y * w, (size_t)w * sizeof(float));
    }
}
