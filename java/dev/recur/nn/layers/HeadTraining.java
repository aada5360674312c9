package dev.recur.nn.layers;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.DeviceTensor;
import dev.recur.backend.Kernels;
import dev.recur.backend.TrainKernels;
import dev.recur.config.RnnConfig;
import dev.recur.engine.WeightSpace;
import dev.recur.nn.Resources;
import dev.recur.nn.train.DeviceOptimizer;
import dev.recur.nn.train.GradientClipping;
import dev.recur.nn.train.Optimizer;
import dev.recur.nn.train.OptimizerConfig;
import dev.recur.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.DoubleSupplier;

/**
 * What {@link SequenceClassifierTrainer} and {@link SequenceTaggerTrainer} share: a recurrent layer and an output
 * {@link Linear} trained by an {@link OptimizerConfig} (SGD, Adam or AdamW, global-norm clipping, parameter groups), and
 * the checks of a batch.
 *
 * <p>On a device backend it holds the parameters on the device while open: the output layer as one buffer
 * {@code [bias (C) | weight (C, W)]} (bias first: {@code col_sum} and {@code bias_act_fwd} take no offset), the
 * recurrent layer's own weight space, a gradient buffer for each, a {@link DeviceOptimizer} over them (its state and
 * clipping scalars) and per-shape scratch. The host mirror (the live tensors registered in the caller's {@link Parameters}) is refreshed
 * by {@link #pullIfChanged} when a step changed the device values; a host write the caller declares (a new
 * {@link Parameters#version}) is uploaded before the next step.
 *
 * <p>On a host backend (the float64 reference) a step zeroes the head's gradients, runs the host forward and backward,
 * clips the global norm of the head's gradients and steps the configuration's host optimizer over the head's parameters
 * only (other modules registered in the same {@link Parameters} are left alone, as on the device).
 */
final class HeadTraining implements AutoCloseable {
    final Parameters params;
    final RecurrentLayer rnn;
    final Linear out;
    final OptimizerConfig config;
    /** The head's parameters (the same live tensors as in {@link #params}) with gradients of their own: host path. */
    private final Parameters own;
    private final Optimizer hostOptimizer;
    final Device device;   // null on a host backend
    private long steps;
    private boolean closed;

    HeadTraining(Parameters params, RecurrentLayer rnn, Linear out, OptimizerConfig config) {
        if (config == null) throw new IllegalArgumentException("config: must not be null");
        this.params = params;
        this.rnn = rnn;
        this.out = out;
        this.config = config;
        if (rnn.rnn().backend() instanceof DeviceBackend be) {
            this.own = null;
            this.hostOptimizer = null;
            this.device = new Device(be);
        } else {
            this.own = new Parameters();
            String rp = rnn.prefix() + ".";
            for (String n : params.names()) {
                if (n.startsWith(rp) || n.equals(out.weightName()) || n.equals(out.biasName())) own.add(n, params.value(n));
            }
            this.hostOptimizer = config.newHostOptimizer();
            this.device = null;
        }
    }

    RnnConfig rnnConfig() {
        return rnn.config();
    }

    long steps() {
        return steps;
    }

    void checkOpen() {
        if (closed) throw new IllegalStateException("trainer: closed");
    }

    /** Refuses a step past the largest count Adam's bias correction takes. */
    void checkStepCount() {
        if (steps >= Integer.MAX_VALUE) throw new IllegalStateException("trainer: more than " + Integer.MAX_VALUE + " steps");
    }

    void stepped() {
        steps++;
    }

    /**
     * The host step: zero the head's gradients, {@code forwardBackward} (which returns the loss and adds the gradients
     * into {@link #params}), clip the head's global norm, the host optimizer over the head's parameters.
     */
    double hostStep(DoubleSupplier forwardBackward) {
        for (String n : own.names()) Arrays.fill(params.grad(n).data(), 0.0);
        double loss = forwardBackward.getAsDouble();
        for (String n : own.names()) {
            double[] g = params.grad(n).data();
            System.arraycopy(g, 0, own.grad(n).data(), 0, g.length);
        }
        GradientClipping.clip(own, config);
        hostOptimizer.step(own);
        params.markChanged();   // the recurrent layer re-reads its weights by the version of the shared parameters
        return loss;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Batch checks (before anything runs)

    /** x {@code [T, B, I]} with I the network's input size. */
    void checkX(Tensor x) {
        if (x == null || x.rank() != 3 || x.dim(0) < 1 || x.dim(1) < 1 || x.dim(2) != rnn.config().inputSize()) {
            throw new IllegalArgumentException("x: expected a tensor [T, B, " + rnn.config().inputSize() + "] with T, B >= 1, got "
                    + (x == null ? "null" : Arrays.toString(x.shape())));
        }
    }

    void checkX(DeviceTensor x) {
        if (x == null || x.rank() != 3 || x.dim(0) < 1 || x.dim(1) < 1 || x.dim(2) != rnn.config().inputSize()) {
            throw new IllegalArgumentException("x: expected a device tensor [T, B, " + rnn.config().inputSize()
                    + "] with T, B >= 1, got " + (x == null ? "null" : Arrays.toString(x.shape())));
        }
        if (device == null) {
            throw new IllegalArgumentException("x: a device tensor needs a trainer on a device backend; this one steps on "
                    + rnn.rnn().backend().name() + " (pass a host Tensor)");
        }
        if (x.backend() != device.be) {
            throw new IllegalArgumentException("x: expected a tensor on the trainer's backend " + device.be.name() + ", got one on "
                    + x.backend().name());
        }
        if (x.type() != DeviceBuffer.Type.F32) throw new IllegalArgumentException("x: expected an F32 tensor, got " + x.type());
        if (x.isClosed()) throw new IllegalArgumentException("x: the device tensor is closed");
    }

    /** lengths {@code [B]} (or null: every sequence T steps), each in [1, T]. */
    static void checkLengths(int[] lengths, int t, int b) {
        if (lengths == null) return;
        if (lengths.length != b) throw new IllegalArgumentException("lengths: expected " + b + " entries (B), got " + lengths.length);
        for (int i = 0; i < b; i++) {
            if (lengths[i] < 1 || lengths[i] > t) {
                throw new IllegalArgumentException("lengths: entry " + i + " must be in [1, " + t + "] (T), got " + lengths[i]);
            }
        }
    }

    @Override
    public void close() {
        if (closed) return;
        try {
            pullIfChanged();
        } finally {
            closed = true;
            if (device != null) device.close();
        }
    }

    void pullIfChanged() {
        if (device != null && !closed) device.pullIfChanged();
    }

    /** The device state; see the class comment. */
    final class Device implements AutoCloseable {
        final DeviceBackend be;
        final int classes, width;
        private final int outN;
        private final List<AutoCloseable> owned = new ArrayList<>();
        final DeviceBuffer outP, outG;
        private final DeviceOptimizer optimizer;
        final WeightSpace rnnP, rnnG;
        /** The mean loss of the step, the one number read back. */
        final DeviceBuffer mean;
        private final Map<String, DeviceBuffer> scratch = new HashMap<>();
        private long hostVersion;
        private boolean dirty;

        Device(DeviceBackend be) {
            this.be = be;
            this.classes = out.outFeatures();
            this.width = out.inFeatures();
            try {
                outN = classes + classes * width;
                outP = f32(outN);
                outG = f32(outN);
                rnnP = rnn.rnn().weightSpace();
                rnnG = rnn.rnn().newGradientSpace(be);
                owned.add(rnnG);
                mean = f32(1);
                DeviceOptimizer o = new DeviceOptimizer(be, config);
                owned.add(o);
                o.add(out.biasName(), new int[] {classes}, outP, outG, 0, classes)
                        .add(out.weightName(), new int[] {classes, width}, outP, outG, classes, (long) classes * width)
                        .addSpace(rnn.prefix(), rnnP, rnnG)
                        .prepare();
                optimizer = o;
                upload();
            } catch (RuntimeException | Error e) {
                close();
                throw e;
            }
        }

        private DeviceBuffer f32(long n) {
            DeviceBuffer b = be.allocate(DeviceBuffer.Type.F32, n);
            owned.add(b);
            return b;
        }

        /** Scratch named {@code key} of exactly {@code n} elements: kept while the batch shape stays, else replaced. */
        DeviceBuffer scratch(String key, DeviceBuffer.Type type, long n) {
            DeviceBuffer b = scratch.get(key);
            if (b != null && b.size() == n && b.type() == type) return b;
            if (b != null) {
                scratch.remove(key);
                b.close();
            }
            b = be.allocate(type, Math.max(1, n));
            scratch.put(key, b);
            return b;
        }

        /** Before a step: the host values go up if the caller declared a host write since the last upload or pull. */
        void syncIn() {
            if (params.version() != hostVersion) upload();
        }

        private void upload() {
            be.uploadDoubles(params.value(out.biasName()).data(), 0, outP, 0, classes);
            be.uploadDoubles(params.value(out.weightName()).data(), 0, outP, classes, classes * width);
            rnn.syncToDevice();
            hostVersion = params.version();
        }

        void pullIfChanged() {
            if (!dirty) return;
            be.downloadDoubles(outP, 0, params.value(out.biasName()).data(), 0, classes);
            be.downloadDoubles(outP, classes, params.value(out.weightName()).data(), 0, classes * width);
            rnn.pullFromDevice();
            params.markChanged();
            rnn.markDeviceCurrent();   // the values it holds are those just pulled: no upload back
            hostVersion = params.version();
            dirty = false;
        }

        /** x {@code [T,B,I]} into scratch: one upload of {@code 4·T·B·I} bytes. */
        DeviceTensor stageX(Tensor x) {
            int t = x.dim(0), b = x.dim(1), i = x.dim(2);
            DeviceBuffer buf = scratch("x", DeviceBuffer.Type.F32, (long) t * b * i);
            be.uploadDoubles(x.data(), 0, buf, 0, t * b * i);
            return DeviceTensor.over(be, buf, t, b, i);
        }

        /**
         * The lengths {@code [B]} on the device: uploaded ({@code 4·B} bytes) when given, else filled with T (no
         * traffic) for the kernels that read them. Returns the tensor for the network, null when every sequence is full.
         */
        DeviceTensor stageLengths(int[] lengths, int t, int b) {
            DeviceBuffer buf = scratch("lengths", DeviceBuffer.Type.I32, b);
            if (lengths == null) {
                be.fill(buf, 0, b, t);
                return null;
            }
            be.upload(lengths, 0, buf, 0, b);
            return DeviceTensor.over(be, buf, b);
        }

        /** {@code logits [rows, C] = x [rows, W] (from element xOff) · Wᵀ + bias}. */
        void linearFwd(int rows, DeviceBuffer x, long xOff, DeviceBuffer logits) {
            be.gemm(false, true, rows, classes, width, 1f, x, xOff, width, outP, classes, width, 0f, logits, 0, classes);
            TrainKernels.biasActFwd(be, rows, classes, TrainKernels.Act.IDENTITY, logits, outP, logits);
        }

        /**
         * The output layer's backward from {@code dlogits [rows, C]}: the bias and weight gradients set in {@code outG},
         * {@code dx [rows, W] = dlogits · W} into {@code dx} from element 0.
         */
        void linearBwd(int rows, DeviceBuffer x, long xOff, DeviceBuffer dlogits, DeviceBuffer dx) {
            be.launch(Kernels.COL_SUM, new long[] {classes}, rows, classes, dlogits, outG, 0f);
            be.gemm(true, false, classes, width, rows, 1f, dlogits, 0, classes, x, xOff, width, 0f, outG, classes, width);
            be.gemm(false, false, rows, width, classes, 1f, dlogits, 0, classes, outP, classes, width, 0f, dx, 0, width);
        }

        /**
         * Clipping and the update, all on the device ({@link DeviceOptimizer}: the global norm over every trained
         * gradient, the scale in a device scalar, one update launch per run of parameters in the same group).
         */
        void optimize() {
            optimizer.step();
            rnn.rnn().weightsUpdated();
            dirty = true;
        }

        /** The step's mean loss: 4 bytes down, the step's one blocking wait. */
        double readLoss() {
            float[] got = new float[1];
            be.download(mean, 0, got, 0, 1);
            return got[0];
        }

        @Override
        public void close() {
            try {
                Resources.closeAll(new ArrayList<>(scratch.values()));
            } finally {
                scratch.clear();
                Resources.closeAll(owned);
            }
        }
    }
}
