package dev.recur.backend.reference;

/**
 * The float64 oracle of the layout kernels ({@code kernels/common/transpose.h}), written from the equation.
 */
public final class ReferenceLayout {
    private ReferenceLayout() {}

    /**
     * {@code transpose}: {@code dst[dstOff + (c*dstLd + r)*inner + e] = beta*dst[..] + src[srcOff + (r*srcLd + c)*inner + e]}
     * for {@code r < rows, c < cols, e < inner}, in place on {@code dst}; beta 0 does not read {@code dst}.
     */
    public static void transpose(int rows, int cols, int inner, double[] src, int srcOff, int srcLd, double[] dst,
                                 int dstOff, int dstLd, double beta) {
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                for (int e = 0; e < inner; e++) {
                    double v = src[srcOff + (r * srcLd + c) * inner + e];
                    int o = dstOff + (c * dstLd + r) * inner + e;
                    dst[o] = beta == 0 ? v : beta * dst[o] + v;
                }
            }
        }
    }
}
