package dev.recur.device;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.TrainKernels;
import dev.recur.backend.reference.ReferenceTrainKernels;
import dev.recur.io.SafeTensors;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.SplittableRandom;
import java.util.stream.Stream;

import static dev.recur.device.TrainTestSupport.assertClose;
import static dev.recur.device.TrainTestSupport.doubles;
import static dev.recur.device.TrainTestSupport.fixture;
import static dev.recur.device.TrainTestSupport.ints;
import static dev.recur.device.TrainTestSupport.meta;

/**
 * {@code embedding_fwd}, {@code embedding_bwd_index} and {@code embedding_bwd} on every device backend against
 * {@link ReferenceTrainKernels}: PyTorch's {@code Embedding(padding_idx)} fixture (lookup and weight gradient), then
 * a vocabulary much larger than the batch with heavily repeated ids, out-of-range ids (no gradient, zero lookup),
 * accumulation into an existing gradient (beta = 1, the pad row left as it was), the sorted position lists
 * themselves, and bit-identical gradients from run to run.
 */
class EmbeddingTest {
    static final double TOL = 1e-5;

    static Stream<String> backends() {
        return DeviceRows.NAMES.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void torchFixture(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        SafeTensors f = fixture("embedding_pad");
        int V = (int) meta(f, "V"), E = (int) meta(f, "E"), N = (int) meta(f, "N"), pad = (int) meta(f, "pad");
        try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
            DeviceBuffer w = bufs.f32(doubles(f, "weight")), ids = bufs.i32(ints(f, "ids")), out = bufs.f32(N * E, -1),
                    dout = bufs.f32(doubles(f, "dout")), dw = bufs.f32(V * E, Double.NaN), start = bufs.i32(V + 1, -1),
                    order = bufs.i32(N, -1);
            TrainKernels.embeddingFwd(be, N, E, V, ids, w, out);
            TrainKernels.embeddingBwd(be, N, E, V, pad, ids, dout, start, order, dw, 0f);
            assertClose(backend + " lookup vs PyTorch", doubles(f, "out"), bufs.get(out, N * E), TOL);
            assertClose(backend + " weight gradient vs PyTorch", doubles(f, "dweight"), bufs.get(dw, V * E), TOL);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void repeatedAndOutOfRangeIdsAccumulating(String backend) {
        DeviceBackend be = DeviceRows.backend(backend);
        SplittableRandom r = new SplittableRandom(12);
        int V = 500, E = 19, N = 300, pad = 0;
        int[] ids = new int[N];
        for (int n = 0; n < N; n++) ids[n] = r.nextInt(20);          // ids 0..19 only: many repeats, pad among them
        ids[3] = V - 1;
        ids[10] = V;                                                  // out of range: no gradient, zero lookup
        ids[11] = -2;
        double[] w = TrainTestSupport.random(r, V * E, 1), dout = TrainTestSupport.random(r, N * E, 1),
                dw = TrainTestSupport.random(r, V * E, 1);
        double[] want = dw.clone();
        ReferenceTrainKernels.embeddingBwd(N, E, V, pad, ids, dout, want, 1);
        try (TrainTestSupport.Bufs bufs = new TrainTestSupport.Bufs(be)) {
            DeviceBuffer dwb = bufs.f32(w), di = bufs.i32(ids), out = bufs.f32(N * E, -1), dd = bufs.f32(dout),
                    dg = bufs.f32(dw), start = bufs.i32(V + 1, -1), order = bufs.i32(N, -1);
            TrainKernels.embeddingFwd(be, N, E, V, di, dwb, out);
            assertClose(backend + " lookup", ReferenceTrainKernels.embeddingFwd(N, E, V, ids, w), bufs.get(out, N * E), TOL);
            TrainKernels.embeddingBwd(be, N, E, V, pad, di, dd, start, order, dg, 1f);
            double[] got = bufs.get(dg, V * E);
            assertClose(backend + " accumulated gradient", want, got, TOL);
            for (int e = 0; e < E; e++) {
                if (got[pad * E + e] != dw[pad * E + e]) throw new AssertionError(backend + ": the pad row changed at " + e);
            }
            // The index: positions of each valid id, in increasing order, pad and out-of-range left out.
            int[] st = bufs.geti(start, V + 1), ord = bufs.geti(order, N);
            int k = 0;
            for (int v = 0; v < V; v++) {
                if (st[v] != k) throw new AssertionError(backend + ": start[" + v + "] = " + st[v] + ", expected " + k);
                for (int n = 0; n < N; n++) {
                    if (ids[n] == v && v != pad) {
                        if (ord[k] != n) throw new AssertionError(backend + ": order[" + k + "] = " + ord[k] + ", expected " + n);
                        k++;
                    }
                }
            }
            if (st[V] != k) throw new AssertionError(backend + ": start[V] = " + st[V] + ", expected " + k);
            // Again, from the same starting gradient: the same bits.
            be.uploadDoubles(dw, 0, dg, 0, V * E);
            TrainKernels.embeddingBwd(be, N, E, V, pad, di, dd, start, order, dg, 1f);
            double[] again = bufs.get(dg, V * E);
            if (!java.util.Arrays.equals(got, again)) throw new AssertionError(backend + ": a second run differs");
        }
    }
}
