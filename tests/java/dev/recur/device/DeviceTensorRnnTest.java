package dev.recur.device;

import dev.recur.backend.Backend;
import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.DeviceTensor;
import dev.recur.backend.Traffic;
import dev.recur.backend.cpu.CpuBackend;
import dev.recur.backend.opencl.OpenClBackend;
import dev.recur.backend.reference.ReferenceBackend;
import dev.recur.config.CellType;
import dev.recur.config.RnnConfig;
import dev.recur.engine.DeviceRnnGradients;
import dev.recur.engine.DeviceRnnInput;
import dev.recur.engine.DeviceRnnOutput;
import dev.recur.engine.GradMode;
import dev.recur.engine.RnnGradients;
import dev.recur.engine.RnnOutput;
import dev.recur.engine.RnnWeights;
import dev.recur.engine.WeightSpace;
import dev.recur.nn.Rnn;
import dev.recur.nn.RnnInput;
import dev.recur.tensor.Tensor;
import org.jocl.Pointer;
import org.jocl.Sizeof;
import org.jocl.cl_command_queue;
import org.jocl.cl_context;
import org.jocl.cl_context_properties;
import org.jocl.cl_device_id;
import org.jocl.cl_mem;
import org.jocl.cl_platform_id;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Map;
import java.util.SplittableRandom;

import static dev.recur.device.DeviceTestSupport.assertClose;
import static dev.recur.device.DeviceTestSupport.random;
import static dev.recur.device.DeviceTestSupport.randomWeights;
import static org.jocl.CL.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The model API on device tensors: forward and backward on the device match the float64 reference, move no byte
 * between host and device and wait for nothing (read from the backend's {@link Traffic} counters around the calls),
 * also on memory the test made itself and wrapped (a {@code cl_mem} from {@code clCreateBuffer}, a native
 * {@code MemorySegment}); gradients accumulate with {@link GradMode#ADD}; weights written on the device take effect
 * without an upload; and nothing leaks.
 */
class DeviceTensorRnnTest {
    static final double TOL = 1e-4;
    static final int T = 6, B = 3;

    static RnnConfig lstm() {
        return RnnConfig.builder(CellType.LSTM, 4, 5).layers(2).bidirectional(true).build();
    }

    /** The float64 reference's forward and backward for the same inputs, weights and output gradients. */
    record Expected(RnnOutput out, RnnGradients grads) {}

    static Expected reference(RnnConfig cfg, RnnWeights w, Tensor x, Tensor h0, Tensor c0, int[] lengths, Tensor dy,
                              Tensor dhN) {
        try (Backend ref = ReferenceBackend.PROVIDER.open(); Rnn rnn = Rnn.create(cfg, ref, w)) {
            RnnOutput o = rnn.forwardTraining(new RnnInput(x, h0, c0, lengths), 7);
            RnnGradients g = rnn.backward(o, dy, dhN, null);
            o.close();
            return new Expected(o, g);
        }
    }

    static void assertGradients(String what, RnnGradients ref, WeightSpace grads, double scale) {
        Map<String, Tensor> got = grads.toTensors();
        for (Map.Entry<String, Tensor> e : ref.weights().entrySet()) {
            Tensor want = e.getValue().copy();
            for (int i = 0; i < want.data().length; i++) want.data()[i] *= scale;
            assertClose(what, "gradient of " + e.getKey(), want, got.get(e.getKey()), TOL);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"cpu", "opencl"})
    void forwardAndBackwardStayOnTheDeviceAndMatchTheReference(String name) {
        DeviceBackend be = DeviceRows.backend(name);
        RnnConfig cfg = lstm();
        SplittableRandom rnd = new SplittableRandom(5);
        RnnWeights w = randomWeights(cfg, 3);
        int ld = cfg.numLayers() * cfg.directions();
        Tensor x = random(rnd, 1, T, B, 4), h0 = random(rnd, 0.5, ld, B, 5), c0 = random(rnd, 0.5, ld, B, 5);
        Tensor dy = random(rnd, 1, T, B, 10), dhN = random(rnd, 1, ld, B, 5);
        int[] lengths = {6, 2, 5};
        Expected ref = reference(cfg, w, x, h0, c0, lengths, dy, dhN);
        long before = be.memoryInUse();
        try (Rnn rnn = Rnn.create(cfg, be, w);
             DeviceTensor xd = DeviceTensor.of(be, x); DeviceTensor h0d = DeviceTensor.of(be, h0);
             DeviceTensor c0d = DeviceTensor.of(be, c0); DeviceTensor len = DeviceTensor.ofInts(be, lengths, B);
             DeviceTensor dyd = DeviceTensor.of(be, dy); DeviceTensor dhNd = DeviceTensor.of(be, dhN);
             WeightSpace grads = rnn.newGradientSpace(be)) {
            Traffic t0 = be.traffic();
            DeviceRnnOutput out = rnn.forwardTraining(DeviceRnnInput.of(xd).withStates(h0d, c0d).withLengths(len), 7);
            DeviceRnnGradients g = rnn.backward(out, dyd, dhNd, null, grads, GradMode.SET);
            Traffic inCall = be.traffic().minus(t0);
            assertEquals(Traffic.ZERO, inCall, name + ": host-device traffic of a device-tensor forward + backward");
            assertClose(name, "y", ref.out().y(), out.y().toTensor(), TOL);
            assertClose(name, "h_n", ref.out().hN(), out.hN().toTensor(), TOL);
            assertClose(name, "c_n", ref.out().cN(), out.cN().toTensor(), TOL);
            assertClose(name, "dx", ref.grads().dx(), g.dx().toTensor(), TOL);
            assertClose(name, "dh0", ref.grads().dh0(), g.dh0().toTensor(), TOL);
            assertClose(name, "dc0", ref.grads().dc0(), g.dc0().toTensor(), TOL);
            assertGradients(name, ref.grads(), grads, 1);

            // ADD accumulates onto what SET wrote: twice the gradients, again without traffic.
            Traffic t1 = be.traffic();
            rnn.backward(out, dyd, dhNd, null, grads, GradMode.ADD).close();
            assertEquals(Traffic.ZERO, be.traffic().minus(t1), name + ": traffic of a backward with GradMode.ADD");
            assertGradients(name + " ADD", ref.grads(), grads, 2);
            g.close();
            out.close();
        }
        assertEquals(before, be.memoryInUse(), name + ": device memory after closing everything");
    }

    @Test
    void wrappedClMemRunsWithoutCopies() {
        OpenClBackend be = (OpenClBackend) DeviceRows.backend("opencl");
        RnnConfig cfg = RnnConfig.builder(CellType.GRU, 4, 5).bidirectional(true).build();
        SplittableRandom rnd = new SplittableRandom(8);
        RnnWeights w = randomWeights(cfg, 4);
        Tensor x = random(rnd, 1, T, B, 4), dy = random(rnd, 1, T, B, 10);
        Expected ref = reference(cfg, w, x, null, null, null, dy, null);
        // The caller's own memory: made, filled and read with JOCL on the backend's context and queue.
        float[] xf = x.toFloatArray(), dyf = dy.toFloatArray();
        cl_mem xm = clCreateBuffer(be.context(), CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, (long) xf.length * Sizeof.cl_float,
                Pointer.to(xf), null);
        cl_mem dym = clCreateBuffer(be.context(), CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, (long) dyf.length * Sizeof.cl_float,
                Pointer.to(dyf), null);
        cl_mem ym = clCreateBuffer(be.context(), CL_MEM_READ_WRITE, (long) T * B * 10 * Sizeof.cl_float, null, null);
        cl_mem dxm = clCreateBuffer(be.context(), CL_MEM_READ_WRITE, (long) xf.length * Sizeof.cl_float, null, null);
        long before = be.memoryInUse();
        try {
            try (DeviceBuffer xb = be.wrap(xm, xf.length, DeviceBuffer.Type.F32);
                 DeviceBuffer dyb = be.wrap(dym, dyf.length, DeviceBuffer.Type.F32);
                 DeviceBuffer yb = be.wrap(ym, (long) T * B * 10, DeviceBuffer.Type.F32);
                 DeviceBuffer dxb = be.wrap(dxm, xf.length, DeviceBuffer.Type.F32);
                 Rnn rnn = Rnn.create(cfg, be, w); WeightSpace grads = rnn.newGradientSpace(be)) {
                DeviceTensor xd = DeviceTensor.over(be, xb, T, B, 4), dyd = DeviceTensor.over(be, dyb, T, B, 10);
                DeviceTensor yd = DeviceTensor.over(be, yb, T, B, 10), dxd = DeviceTensor.over(be, dxb, T, B, 4);
                Traffic t0 = be.traffic();
                try (DeviceRnnOutput out = rnn.forwardTraining(DeviceRnnInput.of(xd), 7, DeviceRnnOutput.into(yd, null, null));
                     DeviceRnnGradients g = rnn.backward(out, dyd, null, null, grads, GradMode.SET,
                             DeviceRnnGradients.into(dxd, null, null))) {
                    be.finish();
                    Traffic inCall = be.traffic().minus(t0);
                    assertEquals(new Traffic(0, 0, 1), inCall, "a forward + backward on wrapped cl_mem, then one finish()");
                    assertFalse(g.dx().ownsBuffer(), "dx is a view of the caller's buffer");
                }
                assertFalse(yb.isClosed(), "closing the output leaves the caller's buffer open");
                assertGradients("wrapped cl_mem", ref.grads(), grads, 1);
            }
            assertEquals(before, be.memoryInUse(), "wrapped memory is never counted or freed by recur");
            // Read back by the test itself, through JOCL: the results are in the caller's memory objects.
            float[] y = new float[T * B * 10], dx = new float[xf.length];
            clEnqueueReadBuffer(be.queue(), ym, CL_TRUE, 0, (long) y.length * 4, Pointer.to(y), 0, null, null);
            clEnqueueReadBuffer(be.queue(), dxm, CL_TRUE, 0, (long) dx.length * 4, Pointer.to(dx), 0, null, null);
            assertClose("wrapped cl_mem", "y", ref.out().y(), Tensor.ofFloats(y, T, B, 10), TOL);
            assertClose("wrapped cl_mem", "dx", ref.grads().dx(), Tensor.ofFloats(dx, T, B, 4), TOL);
        } finally {
            // The caller's memory objects are the caller's to release: recur did not.
            for (cl_mem m : new cl_mem[] {xm, dym, ym, dxm}) clReleaseMemObject(m);
        }
    }

    @Test
    void wrappedMemorySegmentRunsWithoutCopies() {
        CpuBackend be = (CpuBackend) DeviceRows.backend("cpu");
        RnnConfig cfg = RnnConfig.builder(CellType.RNN_TANH, 4, 5).layers(2).build();
        SplittableRandom rnd = new SplittableRandom(9);
        RnnWeights w = randomWeights(cfg, 5);
        Tensor x = random(rnd, 1, T, B, 4), dy = random(rnd, 1, T, B, 5);
        Expected ref = reference(cfg, w, x, null, null, null, dy, null);
        long before = be.memoryInUse();
        try (Arena arena = Arena.ofShared()) {
            MemorySegment xs = arena.allocate((long) T * B * 4 * 4, 64), ys = arena.allocate((long) T * B * 5 * 4, 64);
            MemorySegment dys = arena.allocate((long) T * B * 5 * 4, 64), dxs = arena.allocate((long) T * B * 4 * 4, 64);
            MemorySegment.copy(x.toFloatArray(), 0, xs, ValueLayout.JAVA_FLOAT, 0, T * B * 4);
            MemorySegment.copy(dy.toFloatArray(), 0, dys, ValueLayout.JAVA_FLOAT, 0, T * B * 5);
            try (DeviceBuffer xb = be.wrap(xs, DeviceBuffer.Type.F32, T * B * 4);
                 DeviceBuffer yb = be.wrap(ys, DeviceBuffer.Type.F32, T * B * 5);
                 DeviceBuffer dyb = be.wrap(dys, DeviceBuffer.Type.F32, T * B * 5);
                 DeviceBuffer dxb = be.wrap(dxs, DeviceBuffer.Type.F32, T * B * 4);
                 Rnn rnn = Rnn.create(cfg, be, w); WeightSpace grads = rnn.newGradientSpace(be)) {
                Traffic t0 = be.traffic();
                try (DeviceRnnOutput out = rnn.forwardTraining(DeviceRnnInput.of(DeviceTensor.over(be, xb, T, B, 4)), 7,
                        DeviceRnnOutput.into(DeviceTensor.over(be, yb, T, B, 5), null, null));
                     DeviceRnnGradients g = rnn.backward(out, DeviceTensor.over(be, dyb, T, B, 5), null, null, grads,
                             GradMode.SET, DeviceRnnGradients.into(DeviceTensor.over(be, dxb, T, B, 4), null, null))) {
                    assertEquals(Traffic.ZERO, be.traffic().minus(t0), "a forward + backward on wrapped segments");
                }
                assertGradients("wrapped MemorySegment", ref.grads(), grads, 1);
            }
            // Read by the test from its own segments.
            float[] y = ys.toArray(ValueLayout.JAVA_FLOAT), dx = dxs.toArray(ValueLayout.JAVA_FLOAT);
            assertClose("wrapped MemorySegment", "y", ref.out().y(), Tensor.ofFloats(y, T, B, 5), TOL);
            assertClose("wrapped MemorySegment", "dx", ref.grads().dx(), Tensor.ofFloats(dx, T, B, 4), TOL);
        }
        assertEquals(before, be.memoryInUse(), "wrapped memory is never counted by recur");
    }

    @Test
    void wrapRefusesWhatItCannotUse() {
        CpuBackend be = (CpuBackend) DeviceRows.backend("cpu");
        IllegalArgumentException heap = assertThrows(IllegalArgumentException.class,
                () -> be.wrap(MemorySegment.ofArray(new float[8]), DeviceBuffer.Type.F32, 8));
        assertTrue(heap.getMessage().startsWith("segment: expected a native"), heap.getMessage());
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(64, 64);
            IllegalArgumentException odd = assertThrows(IllegalArgumentException.class,
                    () -> be.wrap(s.asSlice(2), DeviceBuffer.Type.F32, 4));
            assertTrue(odd.getMessage().contains("aligned to 4 bytes"), odd.getMessage());
            IllegalArgumentException big = assertThrows(IllegalArgumentException.class,
                    () -> be.wrap(s, DeviceBuffer.Type.F32, 17));
            assertTrue(big.getMessage().startsWith("elements: expected 1 to 16"), big.getMessage());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"cpu", "opencl"})
    void weightsWrittenOnTheDeviceTakeEffectWithoutAnUpload(String name) {
        DeviceBackend be = DeviceRows.backend(name);
        RnnConfig cfg = RnnConfig.builder(CellType.LSTM, 4, 5).bidirectional(true).build();
        SplittableRandom rnd = new SplittableRandom(10);
        RnnWeights w1 = randomWeights(cfg, 6), w2 = randomWeights(cfg, 7);
        Tensor x = random(rnd, 1, T, B, 4);
        Tensor want;
        try (Backend ref = ReferenceBackend.PROVIDER.open(); Rnn r = Rnn.create(cfg, ref, w2);
             RnnOutput o = r.forward(RnnInput.of(x))) {
            want = o.y();
        }
        try (Rnn rnn = Rnn.create(cfg, be, w1); Rnn other = Rnn.create(cfg, be, w2); DeviceTensor xd = DeviceTensor.of(be, x)) {
            Traffic t0 = be.traffic();
            // A device-side "optimizer": the whole space replaced by another network's, one copy on the device.
            rnn.weightSpace().flat().copyFrom(other.weightSpace().flat());
            rnn.weightsUpdated();
            try (DeviceRnnOutput o = rnn.forward(DeviceRnnInput.of(xd))) {
                assertEquals(Traffic.ZERO, be.traffic().minus(t0), name + ": a device weight update and a forward");
                assertClose(name, "y after the device update", want, o.y().toTensor(), TOL);
            }
            rnn.weightSpace().close();   // the network's own: closing the caller's handle frees nothing
            assertFalse(rnn.weightSpace().flat().isClosed());
            // The named views are PyTorch's parameters.
            assertClose(name, "weight_hh_l0_reverse view", w2.get("weight_hh", 0, 1),
                    rnn.weightSpace().view("weight_hh_l0_reverse").toTensor(), 1e-7);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"cpu", "opencl"})
    void batchFirstIsConvertedOnTheDevice(String name) {
        DeviceBackend be = DeviceRows.backend(name);
        RnnConfig cfg = RnnConfig.builder(CellType.GRU, 4, 5).batchFirst(true).build();
        SplittableRandom rnd = new SplittableRandom(11);
        RnnWeights w = randomWeights(cfg, 8);
        Tensor x = random(rnd, 1, B, T, 4), dy = random(rnd, 1, B, T, 5);
        Expected ref = reference(cfg, w, x, null, null, null, dy, null);
        try (Rnn rnn = Rnn.create(cfg, be, w); DeviceTensor xd = DeviceTensor.of(be, x); DeviceTensor dyd = DeviceTensor.of(be, dy);
             WeightSpace grads = rnn.newGradientSpace(be)) {
            Traffic t0 = be.traffic();
            try (DeviceRnnOutput o = rnn.forwardTraining(DeviceRnnInput.of(xd), 7);
                 DeviceRnnGradients g = rnn.backward(o, dyd, null, null, grads, GradMode.SET)) {
                assertEquals(Traffic.ZERO, be.traffic().minus(t0), name + ": batch-first forward + backward");
                assertClose(name, "y (batch-first)", ref.out().y(), o.y().toTensor(), TOL);
                assertClose(name, "dx (batch-first)", ref.grads().dx(), g.dx().toTensor(), TOL);
            }
            assertGradients(name + " batch-first", ref.grads(), grads, 1);
        }
    }

    @Test
    void theReferenceTakesDeviceTensorsThroughTheHost() {
        DeviceBackend cpu = DeviceRows.backend("cpu");
        RnnConfig cfg = lstm();
        SplittableRandom rnd = new SplittableRandom(12);
        RnnWeights w = randomWeights(cfg, 9);
        Tensor x = random(rnd, 1, T, B, 4), dy = random(rnd, 1, T, B, 10);
        Expected ref = reference(cfg, w, x, null, null, null, dy, null);
        try (Backend refBe = ReferenceBackend.PROVIDER.open(); Rnn rnn = Rnn.create(cfg, refBe, w);
             DeviceTensor xd = DeviceTensor.of(cpu, x); DeviceTensor dyd = DeviceTensor.of(cpu, dy);
             WeightSpace grads = rnn.newGradientSpace(cpu)) {
            try (DeviceRnnOutput o = rnn.forwardTraining(DeviceRnnInput.of(xd), 7);
                 DeviceRnnGradients g = rnn.backward(o, dyd, null, null, grads, GradMode.SET)) {
                assertClose("reference", "y", ref.out().y(), o.y().toTensor(), 1e-6);
                assertClose("reference", "dx", ref.grads().dx(), g.dx().toTensor(), 1e-6);
            }
            assertGradients("reference", ref.grads(), grads, 1);
            assertThrows(UnsupportedOperationException.class, rnn::weightSpace);
        }
    }

    /** Inputs and results that are views at an offset inside larger tensors give the same numbers as whole tensors. */
    @ParameterizedTest
    @ValueSource(strings = {"cpu", "opencl"})
    void viewsAtOffsetsAreInputsAndResults(String name) {
        DeviceBackend be = DeviceRows.backend(name);
        RnnConfig cfg = RnnConfig.builder(CellType.LSTM, 4, 5).build();
        SplittableRandom rnd = new SplittableRandom(14);
        RnnWeights w = randomWeights(cfg, 11);
        Tensor x = random(rnd, 1, T, B, 4), dy = random(rnd, 1, T, B, 5);
        Expected ref = reference(cfg, w, x, null, null, null, dy, null);
        try (Rnn rnn = Rnn.create(cfg, be, w); DeviceTensor big = DeviceTensor.zeros(be, T + 2, B, 4);
             DeviceTensor dyBig = DeviceTensor.zeros(be, T + 1, B, 5); DeviceTensor out = DeviceTensor.zeros(be, 2 * T, B, 5);
             DeviceTensor dxOut = DeviceTensor.zeros(be, T + 3, B, 4); DeviceTensor xd = DeviceTensor.of(be, x);
             DeviceTensor dyd = DeviceTensor.of(be, dy); WeightSpace grads = rnn.newGradientSpace(be)) {
            DeviceTensor xv = big.slice(1, T + 1), dyv = dyBig.slice(1, T + 1), yv = out.slice(T, 2 * T), dxv = dxOut.slice(2, T + 2);
            xv.copyFrom(xd);
            dyv.copyFrom(dyd);
            try (DeviceRnnOutput inf = rnn.forward(DeviceRnnInput.of(xv), DeviceRnnOutput.into(yv, null, null))) {
                assertClose(name, "y (inference, views)", ref.out().y(), yv.toTensor(), TOL);
            }
            try (DeviceRnnOutput o = rnn.forwardTraining(DeviceRnnInput.of(xv), 7);
                 DeviceRnnGradients g = rnn.backward(o, dyv, null, null, grads, GradMode.SET, DeviceRnnGradients.into(dxv, null, null))) {
                assertClose(name, "dx (views)", ref.grads().dx(), dxv.toTensor(), TOL);
            }
            assertClose(name, "rows before the dx view stay untouched", Tensor.zeros(2, B, 4), dxOut.slice(0, 2).toTensor(), 0);
            assertGradients(name + " views", ref.grads(), grads, 1);
        }
    }

    /** A RecurrentLayer on device tensors: the host parameters' change is uploaded once, then nothing moves. */
    @Test
    void recurrentLayerRunsOnDeviceTensors() {
        DeviceBackend be = DeviceRows.backend("cpu");
        RnnConfig cfg = RnnConfig.builder(CellType.GRU, 4, 5).build();
        Tensor x = random(new SplittableRandom(13), 1, T, B, 4);
        dev.recur.nn.layers.Parameters params = new dev.recur.nn.layers.Parameters();
        try (dev.recur.nn.layers.RecurrentLayer layer = new dev.recur.nn.layers.RecurrentLayer(params, "gru", cfg, be, 4);
             DeviceTensor xd = DeviceTensor.of(be, x); WeightSpace grads = layer.rnn().newGradientSpace(be)) {
            params.value("gru.weight_hh_l0").data()[0] += 0.5;   // a host-side change: uploaded at the next forward
            params.markChanged();
            Tensor want;
            try (RnnOutput o = layer.forward(RnnInput.of(x))) {
                want = o.y();
            }
            Traffic t0 = be.traffic();
            try (DeviceRnnOutput o = layer.forwardTraining(DeviceRnnInput.of(xd), 1);
                 DeviceRnnGradients g = layer.backward(o, o.y(), null, null, grads, GradMode.SET)) {
                assertEquals(Traffic.ZERO, be.traffic().minus(t0), "RecurrentLayer forward + backward on device tensors");
                assertClose("RecurrentLayer", "y", want, o.y().toTensor(), 1e-6);
            }
        }
    }

    @Test
    void argumentsAreCheckedBeforeAnythingRuns() {
        DeviceBackend be = DeviceRows.backend("cpu");
        RnnConfig cfg = lstm();
        long before = be.memoryInUse();
        try (Rnn rnn = Rnn.create(cfg, be, RnnWeights.init(cfg, 1)); DeviceTensor x = DeviceTensor.zeros(be, T, B, 4);
             DeviceTensor wrongH0 = DeviceTensor.zeros(be, 4, B, 6); DeviceTensor floats = DeviceTensor.zeros(be, B)) {
            long mid = be.memoryInUse();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> rnn.forward(DeviceRnnInput.of(x).withStates(wrongH0, null)));
            assertEquals("h0: expected shape [4, 3, 5], got [4, 3, 6]", e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> rnn.forward(DeviceRnnInput.of(x).withLengths(floats)));
            assertEquals("lengths: expected a I32 tensor, got F32", e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> DeviceTensor.of(be, new float[5], 2, 3));
            assertEquals("data: expected 6 elements for shape [2, 3], got 5", e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> x.view(70, 2, 3));
            assertTrue(e.getMessage().startsWith("offset: a view of 6 elements [2, 3] at 70 does not fit"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> x.reshape(5, 5));
            assertEquals("shape: expected 72 elements ([6, 3, 4]), got [5, 5] with 25", e.getMessage());
            assertEquals(mid, be.memoryInUse(), "nothing allocated by refused calls survives");
            try (DeviceRnnOutput o = rnn.forwardTraining(DeviceRnnInput.of(x), 1)) {
                long held = be.memoryInUse();
                e = assertThrows(IllegalArgumentException.class, () -> rnn.backward(o, x, null, null, null, GradMode.SET));
                assertEquals("dy: expected shape [6, 3, 10], got [6, 3, 4]", e.getMessage());
                RnnConfig gru = RnnConfig.builder(CellType.GRU, 4, 5).layers(2).bidirectional(true).build();
                try (WeightSpace wrong = WeightSpace.allocate(be, gru)) {
                    e = assertThrows(IllegalArgumentException.class, () -> rnn.backward(o, null, null, null, wrong, GradMode.SET));
                    assertTrue(e.getMessage().startsWith("grads: expected a gradient space with this network's parameters"),
                            e.getMessage());
                }
                assertEquals(held, be.memoryInUse(), "a refused backward allocates nothing");
            }
        }
        assertEquals(before, be.memoryInUse());
    }

    @Test
    void viewsSlicesAndExplicitCopies() {
        DeviceBackend be = DeviceRows.backend("cpu");
        float[] data = new float[24];
        for (int i = 0; i < 24; i++) data[i] = i;
        Traffic t0 = be.traffic();
        try (DeviceTensor t = DeviceTensor.of(be, data, 4, 3, 2)) {
            assertEquals(new Traffic(96, 0, 0), be.traffic().minus(t0), "one upload of 24 floats");
            DeviceTensor row = t.slice(1, 3);
            assertEquals(6, row.offset());
            assertEquals(12, row.size());
            float[] got = row.reshape(12).toFloatArray();
            assertEquals(6f, got[0]);
            assertEquals(17f, got[11]);
            assertEquals(new Traffic(96, 48, 1), be.traffic().minus(t0), "one download of 12 floats, one wait");
            row.close();
            assertFalse(t.isClosed(), "closing a view leaves the owner open");
            try (DeviceTensor swapped = t.swap01(null)) {
                assertTrue(java.util.Arrays.equals(new int[] {3, 4, 2}, swapped.shape()));
                float[] s = swapped.toFloatArray();
                // swapped[c][r][e] = t[r][c][e]
                assertEquals(data[(2 * 3 + 1) * 2 + 1], s[(1 * 4 + 2) * 2 + 1]);
            }
        }
    }

    /** A backend opened on the caller's own context, device and queue, made with JOCL, which recur does not release. */
    @Test
    void openOnTheCallersOwnContext() {
        OpenClBackend shared = (OpenClBackend) DeviceRows.backend("opencl");
        cl_device_id device = shared.device();
        cl_platform_id[] platform = new cl_platform_id[1];
        clGetDeviceInfo(device, CL_DEVICE_PLATFORM, Sizeof.cl_platform_id, Pointer.to(platform), null);
        cl_context_properties props = new cl_context_properties();
        props.addProperty(CL_CONTEXT_PLATFORM, platform[0]);
        cl_context ctx = clCreateContext(props, 1, new cl_device_id[] {device}, null, null, null);
        cl_command_queue queue = clCreateCommandQueue(ctx, device, 0, null);
        try {
            RnnConfig cfg = RnnConfig.builder(CellType.RNN_TANH, 4, 5).build();
            RnnWeights w = randomWeights(cfg, 2);
            Tensor x = random(new SplittableRandom(3), 1, T, B, 4);
            Tensor want;
            try (Backend ref = ReferenceBackend.PROVIDER.open(); Rnn r = Rnn.create(cfg, ref, w);
                 RnnOutput o = r.forward(RnnInput.of(x))) {
                want = o.y();
            }
            try (OpenClBackend be = OpenClBackend.open(ctx, device, queue)) {
                assertEquals(ctx, be.context());
                assertEquals(queue, be.queue());
                try (Rnn rnn = Rnn.create(cfg, be, w); DeviceTensor xd = DeviceTensor.of(be, x);
                     DeviceRnnOutput o = rnn.forward(DeviceRnnInput.of(xd))) {
                    assertClose("caller's context", "y", want, o.y().toTensor(), TOL);
                }
                // A tensor of this backend is refused by a network on another backend, by name.
                try (Rnn rnn = Rnn.create(cfg, shared, w); DeviceTensor xd = DeviceTensor.of(be, x)) {
                    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                            () -> rnn.forward(DeviceRnnInput.of(xd)));
                    assertTrue(e.getMessage().startsWith("x: expected a tensor on this network's backend"), e.getMessage());
                }
                assertEquals(0, be.memoryInUse());
            }
            // Still the caller's: usable after the backend closed.
            cl_mem m = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 16, null, null);
            clEnqueueFillBuffer(queue, m, Pointer.to(new float[] {1f}), 4, 0, 16, 0, null, null);
            clFinish(queue);
            clReleaseMemObject(m);
        } finally {
            clReleaseCommandQueue(queue);
            clReleaseContext(ctx);
        }
    }
}
