package dev.recur.device;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.TrainKernels;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.stream.Stream;

import static dev.recur.device.TrainKernelsArgumentsTest.refused;

/**
 * The launchers of the beam search kernels ({@code beam_candidates}, {@code beam_update}, {@code beam_backtrace},
 * {@code repeat_rows_i32}) refuse bad arguments before anything is issued, naming the kernel and the argument, and a
 * refused launch writes nothing.
 */
class BeamKernelsArgumentsTest {
    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void badArgumentsNameTheArgument(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        try (TrainTestSupport.Bufs b = new TrainTestSupport.Bufs(be)) {
            DeviceBuffer f = b.f32(24, 1), f6 = b.f32(6, 1), i6 = b.i32(6, 3), i24 = b.i32(24, 3), i5 = b.i32(5, 3);
            refused("beam_candidates: end must be in [0, V=4), got 4",
                    () -> TrainKernels.beamCandidates(be, 2, 3, 4, 0, 4, f, i6, f6, f));
            refused("beam_candidates: tok must be an I32 buffer, got F32 buffer",
                    () -> TrainKernels.beamCandidates(be, 2, 3, 4, 0, 1, f, f6, f6, f));
            refused("beam_candidates: cand needs 24 elements, got a buffer of 6",
                    () -> TrainKernels.beamCandidates(be, 2, 3, 4, 0, 1, f, i6, f6, f6));
            refused("beam_candidates: K must be >= 1, got 0",
                    () -> TrainKernels.beamCandidates(be, 2, 0, 4, 0, 1, f, i6, f6, f));
            refused("beam_candidates: step must be >= 0, got -1",
                    () -> TrainKernels.beamCandidates(be, 2, 3, 4, -1, 1, f, i6, f6, f));
            refused("beam_update: histTok needs 18 elements, got a buffer of 6",
                    () -> TrainKernels.beamUpdate(be, 2, 3, 4, 2, 1, f6, i6, i6, i6, f6, i6, i24));
            refused("beam_update: idx needs 6 elements, got a buffer of 5",
                    () -> TrainKernels.beamUpdate(be, 2, 3, 4, 0, 1, f6, i5, i6, i6, f6, i6, i6));
            refused("beam_update: score must be an F32 buffer, got I32 buffer",
                    () -> TrainKernels.beamUpdate(be, 2, 3, 4, 0, 1, f6, i6, i6, i6, i6, i6, i6));
            refused("beam_backtrace: alpha must be a finite number >= 0, got -1.0",
                    () -> TrainKernels.beamBacktrace(be, 2, 3, 4, 1, -1f, f6, i24, i24, i24, i24, f));
            refused("beam_backtrace: histPar needs 24 elements, got a buffer of 6",
                    () -> TrainKernels.beamBacktrace(be, 2, 3, 4, 1, 0f, f6, i24, i6, i24, i24, f));
            refused("beam_backtrace: scores must be an F32 buffer",
                    () -> TrainKernels.beamBacktrace(be, 2, 3, 4, 1, 0f, f6, i24, i24, i24, i24, i24));
            refused("beam_backtrace: S must be >= 1, got 0",
                    () -> TrainKernels.beamBacktrace(be, 2, 3, 0, 1, 0f, f6, i24, i24, i24, i24, f));
            refused("repeat_rows_i32: dst needs 24 elements, got a buffer of 6",
                    () -> TrainKernels.repeatRowsI32(be, 2, 3, 4, i6, i6));
            refused("repeat_rows_i32: src must be an I32 buffer",
                    () -> TrainKernels.repeatRowsI32(be, 2, 3, 1, f6, i6));
            refused("repeat_rows_i32: dst must not be src",
                    () -> TrainKernels.repeatRowsI32(be, 2, 3, 1, i6, i6));
            double[] after = b.get(f, 24);
            for (double x : after) if (x != 1) throw new AssertionError(backend + ": a refused launch wrote f: " + x);
            int[] ints = b.geti(i24, 24);
            for (int x : ints) if (x != 3) throw new AssertionError(backend + ": a refused launch wrote i24: " + x);
        }
    }
}
