package dev.recur.device;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.Kernels;
import dev.recur.config.DropoutMask;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The device's dropout masks ({@code kernels/common/random.h}) are bit-identical to {@link DropoutMask}:
 * {@code input_dropout_fwd} on an all-ones input writes the mask itself, for seeds whose high and low words
 * are both in play (negative, above 2^32), several layers, both directions and drop probabilities.
 */
class DropoutMaskKernelTest {
    static Stream<Arguments> rows() {
        List<Arguments> a = new ArrayList<>();
        long[] seeds = {0L, 1L, -1L, 0x1234_5678_9abc_def0L, Long.MIN_VALUE, 42L << 33};
        double[] ps = {0.1, 0.5, 0.9};
        for (String be : DeviceRows.NAMES) for (long s : seeds) for (double p : ps) a.add(Arguments.of(be, s, p));
        return a.stream();
    }

    @ParameterizedTest(name = "{0}: seed {1} p {2}")
    @MethodSource("rows")
    void inputDropoutMaskEqualsDropoutMaskValue(String backend, long seed, double p) {
        DeviceBackend be = DeviceRows.backend(backend);
        int T = 2, B = 3, I = 37, D = 2, layer = 3;
        float[] ones = new float[T * B * I];
        Arrays.fill(ones, 1f);
        int thresh = DropoutMask.threshold(p);
        float scale = (float) (1 / (1 - p));
        try (DeviceBuffer x = be.allocate(DeviceBuffer.Type.F32, ones.length);
             DeviceBuffer out = be.allocate(DeviceBuffer.Type.F32, (long) D * ones.length)) {
            be.upload(ones, 0, x, 0, ones.length);
            be.launch(Kernels.INPUT_DROPOUT_FWD, new long[] {I, B, (long) T * D}, T, B, I, D, x, out, (int) seed,
                    (int) (seed >>> 32), layer, thresh, scale);
            float[] got = new float[D * ones.length];
            be.download(out, 0, got, 0, got.length);
            int dropped = 0;
            for (int d = 0; d < D; d++) {
                for (int t = 0; t < T; t++) {
                    for (int b = 0; b < B; b++) {
                        for (int j = 0; j < I; j++) {
                            double want = DropoutMask.value(seed, DropoutMask.stream(layer, d, DropoutMask.INPUT), b * I + j, p);
                            float g = got[((d * T + t) * B + b) * I + j];
                            if (g != (float) want) {
                                throw new AssertionError("mask d=" + d + " t=" + t + " b=" + b + " j=" + j + ": expected "
                                        + want + ", got " + g);
                            }
                            if (g == 0) dropped++;
                        }
                    }
                }
            }
            double frac = dropped / (double) got.length;
            assertTrue(Math.abs(frac - p) < 0.2, "dropped fraction " + frac + " for p " + p);
        }
    }
}
