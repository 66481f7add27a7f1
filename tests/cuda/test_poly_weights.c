/* The polyphase rewrite's algebra on the CPU (no GPU needed): the composed
 * weights of mtk_poly_compose_weights (polyconv.cu, the host function the
 * fuse_poly pass calls), applied as the GPU runs them, against the direct
 * computation, in double:
 *
 *   direct:     conv3x3(resize2x(x)), zeros beyond the upsampled image,
 *               resize2x the ONNX linear / half_pixel upsample (clamped taps);
 *   polyphase:  phase (py, px) of output channel co at low-resolution pixel
 *               (i, j) = conv3x3 of x padded by one REPLICATED pixel with
 *               composed channel (py * 2 + px) * CO + co, no padding; then on
 *               the output's one-pixel ring, minus W[tap] . resize2x(x) at the
 *               clamped position for each tap that falls outside the image
 *               (what mtk_poly_finish subtracts).
 *
 * The weights are small multiples of 1/8, so every composed weight is
 * exact in FP16 and the two must agree to rounding noise (1e-9 of the
 * output's size): a wrong coefficient, phase order or ring term is off by
 * the output's own size.  Sizes include 1-pixel-wide inputs (the whole
 * output is ring).  Exit 1 on failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "cuda/kernels.h"

#include "check.h"
#include "oracle.h"

static void tap(int o, int len, int *i0, int *i1, double *a) {
    double f = (o + 0.5) / 2.0 - 0.5;
    f = fmin(fmax(f, 0.0), len - 1.0);
    *i0 = (int)f;
    *i1 = *i0 + 1 < len ? *i0 + 1 : len - 1;
    *a = f - *i0;
}

/* the upsampled x at (oy, ox), channel c; x [IH][IW][C] */
static double up_at(const double *x, int IH, int IW, int C, int oy, int ox, int c) {
    int y0, y1, x0, x1;
    double ay, ax;
    tap(oy, IH, &y0, &y1, &ay);
    tap(ox, IW, &x0, &x1, &ax);
    return x[((size_t)y0 * IW + x0) * C + c] * (1 - ay) * (1 - ax) + x[((size_t)y0 * IW + x1) * C + c] * (1 - ay) * ax +
           x[((size_t)y1 * IW + x0) * C + c] * ay * (1 - ax) + x[((size_t)y1 * IW + x1) * C + c] * ay * ax;
}

static int check_case(int IH, int IW, int C, int CO, oracle_rng *r) {
    const int OH = 2 * IH, OW = 2 * IW;
    double *x = malloc(sizeof(double) * (size_t)IH * IW * C);
    uint16_t *w = malloc(sizeof(uint16_t) * (size_t)CO * 9 * C), *wc = malloc(sizeof(uint16_t) * (size_t)4 * CO * 9 * C);
    for (size_t i = 0; i < (size_t)IH * IW * C; i++) x[i] = oracle_normal(r);
    for (size_t i = 0; i < (size_t)CO * 9 * C; i++) w[i] = mt_float_to_half((float)((int)(oracle_uniform(r) * 33) - 16) / 8.f);
    if (mtk_poly_compose_weights(w, CO, C, wc)) {
        printf("  out of memory\n");
        return 0;
    }
    double maxd = 0, maxr = 0;
    for (int oy = 0; oy < OH; oy++)
        for (int ox = 0; ox < OW; ox++)
            for (int co = 0; co < CO; co++) {
                /* direct */
                double ref = 0;
                for (int t = 0; t < 9; t++) {
                    const int yy = oy + t / 3 - 1, xx = ox + t % 3 - 1;
                    if (yy < 0 || yy >= OH || xx < 0 || xx >= OW) continue;
                    for (int c = 0; c < C; c++) ref += mt_half_to_float(w[((size_t)co * 9 + t) * C + c]) * up_at(x, IH, IW, C, yy, xx, c);
                }
                /* polyphase: the composed conv over the replicate-padded input */
                const int i = oy >> 1, j = ox >> 1, oc = ((oy & 1) * 2 + (ox & 1)) * CO + co;
                double v = 0;
                for (int dy = 0; dy < 3; dy++)
                    for (int dx = 0; dx < 3; dx++) {
                        int sy = i + dy - 1, sx = j + dx - 1;
                        sy = sy < 0 ? 0 : sy >= IH ? IH - 1 : sy;
                        sx = sx < 0 ? 0 : sx >= IW ? IW - 1 : sx;
                        for (int c = 0; c < C; c++)
                            v += mt_half_to_float(wc[((size_t)oc * 9 + dy * 3 + dx) * C + c]) * x[((size_t)sy * IW + sx) * C + c];
                    }
                /* the ring's correction */
                for (int t = 0; t < 9; t++) {
                    const int yy = oy + t / 3 - 1, xx = ox + t % 3 - 1;
                    if (yy >= 0 && yy < OH && xx >= 0 && xx < OW) continue;
                    const int cy = yy < 0 ? 0 : yy >= OH ? OH - 1 : yy, cx = xx < 0 ? 0 : xx >= OW ? OW - 1 : xx;
                    for (int c = 0; c < C; c++) v -= mt_half_to_float(w[((size_t)co * 9 + t) * C + c]) * up_at(x, IH, IW, C, cy, cx, c);
                }
                if (fabs(v - ref) > maxd) maxd = fabs(v - ref);
                if (fabs(ref) > maxr) maxr = fabs(ref);
            }
    const int ok = maxr > 1 && maxd <= 1e-9 * maxr;
    printf("  %2dx%-2d C %2d CO %2d: max |poly - direct| %.2e of max |out| %.2f  %s\n", IH, IW, C, CO, maxd, maxr, ok ? "ok" : "FAIL");
    free(x);
    free(w);
    free(wc);
    return ok;
}

int main(void) {
    oracle_rng r = {oracle_seed(0) + 29};
    static const int cases[][4] = {{5, 7, 8, 8}, {1, 5, 8, 16}, {4, 1, 16, 8}, {1, 1, 8, 8}, {6, 6, 24, 40}, {9, 4, 16, 24}};
    printf("polyphase upsample -> conv3x3 (composed weights) vs direct:\n");
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        CHECK(check_case(cases[k][0], cases[k][1], cases[k][2], cases[k][3], &r), "case %zu", k);
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
