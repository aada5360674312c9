package dev.recur.nn.train;

import dev.recur.backend.DeviceBackend;
import dev.recur.backend.DeviceBuffer;
import dev.recur.backend.TrainKernels;
import dev.recur.engine.WeightSpace;
import dev.recur.nn.Resources;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * An {@link OptimizerConfig} on a device: the parameters stay in device buffers and a {@link #step()} launches
 * kernels only (no upload, no read-back, no wait).
 *
 * <p>Register every parameter once with {@link #add} (a range of a value buffer and the same range of its gradient
 * buffer) or {@link #addSpace} (every named view of a {@link WeightSpace}); the first {@link #step()} lays out the
 * launches and allocates the optimizer state, after which nothing more can be added. A step is:
 * <ol>
 *   <li>when the configuration clips: {@code grad_norm_partial} over each contiguous run of non-frozen gradient
 *       ranges into one partial-sum buffer, then one {@code grad_clip_scale} (PyTorch's
 *       {@code min(1, clipNorm/(norm+1e-6))}, left in a device scalar the update reads). Frozen gradients do not count,
 *       as PyTorch's {@code clip_grad_norm_} over the optimizer's parameters would not see them;</li>
 *   <li>one {@code adam_step} or {@code sgd_step} per run of adjacent ranges of one buffer in the same group (equal
 *       learning-rate scale and weight decay): a weight space whose parameters share a group is one launch. Frozen
 *       ranges are not launched.</li>
 * </ol>
 * The optimizer state (Adam's {@code m}, {@code v}; SGD's momentum buffer) of a value buffer spans that buffer from 0
 * to the end of its last non-frozen range, since the kernels index state and values alike: a buffer holding only
 * frozen parameters gets none, a frozen range inside a trained buffer has state that is never touched.
 *
 * <p>The sums run in a fixed order, so steps are bit-identical run to run. Not thread-safe. {@link #close()} frees the
 * state this optimizer allocated, never the registered buffers.
 */
public final class DeviceOptimizer implements AutoCloseable {
    private record Entry(String name, int[] shape, DeviceBuffer p, DeviceBuffer g, int off, int n, OptimizerConfig.Group group) {}

    /** One launch: {@code [off, off+n)} of {@code p}, {@code g} and the state {@code s0}, {@code s1}. */
    private record Run(DeviceBuffer p, DeviceBuffer g, DeviceBuffer s0, DeviceBuffer s1, int off, int n, OptimizerConfig.Group group) {}

    private final DeviceBackend be;
    private final OptimizerConfig config;
    private final List<Entry> entries = new ArrayList<>();
    private final Set<String> names = new HashSet<>();
    private final List<AutoCloseable> owned = new ArrayList<>();
    private final DeviceBuffer norm, scale;
    private List<Run> runs, normRuns;
    private Map<DeviceBuffer, DeviceBuffer[]> state;
    private DeviceBuffer parts;
    private long stateElements;
    private double lr;
    private long steps;
    private boolean momentumStarted;
    private boolean closed;

    public DeviceOptimizer(DeviceBackend backend, OptimizerConfig config) {
        if (backend == null) throw new IllegalArgumentException("backend: must not be null");
        if (config == null) throw new IllegalArgumentException("config: must not be null");
        this.be = backend;
        this.config = config;
        this.lr = config.lr();
        try {
            norm = own(be.allocate(DeviceBuffer.Type.F32, 1));
            scale = own(be.allocate(DeviceBuffer.Type.F32, 1));
            be.fill(scale, 0, 1, 1.0);   // stays 1 without clipping
        } catch (RuntimeException | Error e) {
            Resources.closeAll(owned);
            throw e;
        }
    }

    public OptimizerConfig config() {
        return config;
    }

    /**
     * Registers the parameter {@code name} (its {@link dev.recur.nn.layers.Parameters} name, which the configuration's
     * rules read with {@code shape}): its values are {@code value[offset, offset+length)} and its gradient the same
     * range of {@code grad}. A value buffer pairs with one gradient buffer; ranges of one buffer must not overlap.
     */
    public DeviceOptimizer add(String name, int[] shape, DeviceBuffer value, DeviceBuffer grad, long offset, long length) {
        open();
        if (runs != null) throw new IllegalStateException("DeviceOptimizer: parameters are registered before the first step");
        if (name == null || name.isEmpty()) throw new IllegalArgumentException("name: must be a non-empty string, got " + name);
        if (names.contains(name)) throw new IllegalArgumentException("name: '" + name + "' is already registered");
        if (shape == null) throw new IllegalArgumentException("shape: must not be null");
        long count = 1;
        for (int d : shape) {
            if (d <= 0) throw new IllegalArgumentException("shape: expected positive dimensions, got " + Arrays.toString(shape));
            count *= d;
        }
        if (length <= 0 || length != count) {
            throw new IllegalArgumentException("length: expected " + count + " (the elements of shape " + Arrays.toString(shape)
                    + " of " + name + "), got " + length);
        }
        if (offset < 0) throw new IllegalArgumentException("offset: expected >= 0, got " + offset);
        if (offset + length > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("offset: " + name + " ends at " + (offset + length) + ", past the kernels' int32 index range");
        }
        checkBuffer("value", name, value, offset + length);
        checkBuffer("grad", name, grad, offset + length);
        if (value == grad) throw new IllegalArgumentException("grad: must be another buffer than value (" + name + ")");
        for (Entry e : entries) {
            boolean sameP = e.p == value, sameG = e.g == grad;
            if (sameP != sameG || e.p == grad || e.g == value) {
                throw new IllegalArgumentException("grad: " + name + " pairs its value and gradient buffers otherwise than " + e.name
                        + " does: a value buffer has one gradient buffer");
            }
            if (sameP && offset < e.off + e.n && e.off < offset + length) {
                throw new IllegalArgumentException("offset: " + name + " [" + offset + ", " + (offset + length) + ") overlaps " + e.name
                        + " [" + e.off + ", " + (e.off + e.n) + ")");
            }
        }
        entries.add(new Entry(name, shape.clone(), value, grad, (int) offset, (int) length, config.group(name, shape)));
        names.add(name);
        return this;
    }

    /**
     * Registers every parameter of {@code values} as {@code prefix.<name>} (a {@link dev.recur.nn.layers.RecurrentLayer}'s
     * names in {@link dev.recur.nn.layers.Parameters}), its gradient the same view of {@code grads}.
     */
    public DeviceOptimizer addSpace(String prefix, WeightSpace values, WeightSpace grads) {
        if (prefix == null) throw new IllegalArgumentException("prefix: must not be null");
        if (values == null) throw new IllegalArgumentException("values: must not be null");
        if (grads == null) throw new IllegalArgumentException("grads: must not be null");
        if (!values.config().equals(grads.config())) {
            throw new IllegalArgumentException("grads: expected a space of the values' configuration " + values.config() + ", got " + grads.config());
        }
        long base = values.flat().offset();
        if (grads.flat().offset() != base) {
            throw new IllegalArgumentException("grads: expected the space at offset " + base + " of its buffer as the values', got "
                    + grads.flat().offset());
        }
        for (String n : values.names()) {
            add(prefix.isEmpty() ? n : prefix + "." + n, values.shape(n), values.flat().buffer(), grads.flat().buffer(),
                    base + values.offset(n), values.view(n).size());
        }
        return this;
    }

    private static void checkBuffer(String arg, String name, DeviceBuffer b, long end) {
        if (b == null) throw new IllegalArgumentException(arg + ": must not be null (" + name + ")");
        if (b.type() != DeviceBuffer.Type.F32) throw new IllegalArgumentException(arg + ": expected an F32 buffer for " + name + ", got " + b.type());
        if (b.size() < end) {
            throw new IllegalArgumentException(arg + ": " + name + " needs " + end + " elements, the buffer has " + b.size());
        }
    }

    /** The learning rate of the next steps (before the groups' scales); starts at the configuration's. */
    public double learningRate() {
        return lr;
    }

    /** Changes the base learning rate for the following steps (for schedules). */
    public void setLearningRate(double lr) {
        if (!(lr > 0) || !Double.isFinite(lr)) throw new IllegalArgumentException("lr: expected a finite value > 0, got " + lr);
        this.lr = lr;
    }

    /** Steps taken: the next step is Adam's step {@code steps() + 1} for its bias corrections. */
    public long steps() {
        return steps;
    }

    /**
     * Sets the count of steps taken, for a trainer that shares it with a host optimizer (it may step on the host in
     * between); the momentum buffers still start at this optimizer's own first step.
     */
    public void setSteps(long steps) {
        if (steps < 0 || steps >= Integer.MAX_VALUE) throw new IllegalArgumentException("steps: expected in [0, " + Integer.MAX_VALUE + "), got " + steps);
        this.steps = steps;
    }

    /** Lays out the launches and allocates the state if the first step has not; nothing can be added afterwards. */
    public void prepare() {
        open();
        if (runs != null) return;
        if (entries.isEmpty()) throw new IllegalStateException("DeviceOptimizer: no parameter registered");
        List<Run> upd = new ArrayList<>(), nrm = new ArrayList<>();
        Map<DeviceBuffer, Long> ends = new IdentityHashMap<>();
        for (Entry e : entries) {
            if (e.group.frozen()) continue;
            ends.merge(e.p, (long) e.off + e.n, Math::max);
            Run last = nrm.isEmpty() ? null : nrm.get(nrm.size() - 1);
            if (last != null && last.g == e.g && last.off + last.n == e.off) {
                nrm.set(nrm.size() - 1, new Run(last.p, last.g, null, null, last.off, last.n + e.n, null));
            } else {
                nrm.add(new Run(e.p, e.g, null, null, e.off, e.n, null));
            }
            last = upd.isEmpty() ? null : upd.get(upd.size() - 1);
            if (last != null && last.p == e.p && last.off + last.n == e.off && last.group.equals(e.group)) {
                upd.set(upd.size() - 1, new Run(last.p, last.g, null, null, last.off, last.n + e.n, last.group));
            } else {
                upd.add(new Run(e.p, e.g, null, null, e.off, e.n, e.group));
            }
        }
        int nstate = config.kind() != OptimizerConfig.Kind.SGD ? 2 : config.momentum() != 0 ? 1 : 0;
        Map<DeviceBuffer, DeviceBuffer[]> st = new IdentityHashMap<>();
        DeviceBuffer unused = null;
        for (Map.Entry<DeviceBuffer, Long> e : ends.entrySet()) {
            DeviceBuffer[] s = new DeviceBuffer[2];
            for (int i = 0; i < nstate; i++) {
                s[i] = own(be.allocate(DeviceBuffer.Type.F32, e.getValue()));
                be.fill(s[i], 0, e.getValue(), 0.0);
                stateElements += e.getValue();
            }
            if (nstate == 0) {
                // sgd_step without momentum reads no buffer but takes one.
                if (unused == null) unused = own(be.allocate(DeviceBuffer.Type.F32, 1));
                s[0] = unused;
            }
            st.put(e.getKey(), s);
        }
        List<Run> withState = new ArrayList<>();
        for (Run r : upd) {
            DeviceBuffer[] s = st.get(r.p);
            withState.add(new Run(r.p, r.g, s[0], s[1], r.off, r.n, r.group));
        }
        if (config.clips() && !nrm.isEmpty()) {
            long np = 0;
            for (Run r : nrm) np += TrainKernels.normParts(r.n);
            parts = own(be.allocate(DeviceBuffer.Type.F32, np));
        }
        state = st;
        normRuns = List.copyOf(nrm);
        runs = List.copyOf(withState);
    }

    /**
     * One step over every registered parameter from the gradients now in the gradient buffers: clipping (when
     * configured) and the update, all launched on the device; nothing is read back.
     */
    public void step() {
        prepare();
        if (steps + 1 > Integer.MAX_VALUE) throw new IllegalStateException("DeviceOptimizer: more than " + Integer.MAX_VALUE + " steps");
        if (parts != null) {
            int q = 0;
            for (Run r : normRuns) q += TrainKernels.gradNormPartial(be, r.g, r.off, r.n, parts, q);
            TrainKernels.gradClipScale(be, parts, q, (float) config.clipNorm(), norm, scale);
        }
        int t = (int) (steps + 1);
        boolean adam = config.kind() != OptimizerConfig.Kind.SGD;
        for (Run r : runs) {
            float lr = (float) (this.lr * r.group.lrScale()), wd = (float) r.group.weightDecay();
            if (adam) {
                TrainKernels.adamStep(be, r.p, r.g, r.s0, r.s1, scale, r.off, r.n, t, lr, (float) config.beta1(),
                        (float) config.beta2(), (float) config.eps(), wd, config.kind() == OptimizerConfig.Kind.ADAMW);
            } else {
                TrainKernels.sgdStep(be, r.p, r.g, r.s0, scale, r.off, r.n, !momentumStarted, lr, (float) config.momentum(),
                        (float) config.dampening(), wd, config.nesterov());
            }
        }
        momentumStarted = true;
        steps = t;
    }

    /** Kernel launches of one step: the partial norms and the scale (when clipping), then one update per run. */
    public int launchesPerStep() {
        prepare();
        return (parts != null ? normRuns.size() + 1 : 0) + runs.size();
    }

    /**
     * Whether {@code name} has optimizer state on the device: never for a frozen parameter (in a buffer of its own none
     * is allocated; inside a trained buffer its indexes of the state are never touched).
     */
    public boolean hasState(String name) {
        prepare();
        for (Entry e : entries) {
            if (e.name.equals(name)) {
                if (e.group.frozen()) return false;
                DeviceBuffer[] s = state.get(e.p);
                return s != null && stateElements > 0 && s[0] != null && s[0].size() >= (long) e.off + e.n;
            }
        }
        throw new IllegalArgumentException("name: no parameter named '" + name + "' is registered");
    }

    /** Float32 elements of optimizer state allocated (0 before the first step). */
    public long stateElements() {
        return stateElements;
    }

    /** The device scalar holding the last step's global gradient norm (written only when the configuration clips). */
    public DeviceBuffer normScalar() {
        return norm;
    }

    private void open() {
        if (closed) throw new IllegalStateException("DeviceOptimizer: closed");
    }

    private <T extends AutoCloseable> T own(T c) {
        owned.add(c);
        return c;
    }

    /** Frees the state; the registered buffers are the caller's. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        Resources.closeAll(owned);
    }
}
