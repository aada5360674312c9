package dev.recur.nn.train;

import dev.recur.nn.layers.Parameters;
import dev.recur.tensor.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OptimizerTest {
    static Parameters one(double value) {
        Parameters p = new Parameters();
        p.add("w", Tensor.of(new double[] {value}, 1));
        return p;
    }

    static void setGrad(Parameters p, double g) {
        p.grad("w").data()[0] = g;
    }

    static double w(Parameters p) {
        return p.value("w").data()[0];
    }

    /**
     * Adam from p = 1 with gradients 0.5, -1, 0.25 (lr 0.1, β 0.9/0.999, ε 1e-8). Step 1 by hand: m̂ = g, v̂ = g²,
     * so p = 1 - 0.1·0.5/(0.5 + 1e-8) = 0.900000002. Step 2: m = 0.045 - 0.1 = -0.055, m̂ = -0.055/0.19;
     * v = 0.999·0.00025 + 0.001 = 0.00124975, v̂ = v/0.001999; p = 0.900000002 - 0.1·m̂/(sqrt(v̂) + ε).
     */
    @Test
    void adamFirstStepsMatchTheFormula() {
        Parameters p = one(1.0);
        Adam adam = new Adam(0.1);
        setGrad(p, 0.5);
        adam.step(p);
        assertEquals(0.900000002, w(p), 1e-15, "w after Adam step 1");
        setGrad(p, -1.0);
        long version = p.version();
        adam.step(p);
        double mhat = -0.055 / 0.19, vhat = 0.00124975 / 0.001999;
        assertEquals(0.900000002 - 0.1 * mhat / (Math.sqrt(vhat) + 1e-8), w(p), 1e-12, "w after Adam step 2");
        assertEquals(0.9366103542405654, w(p), 1e-12, "w after Adam step 2 (value)");
        setGrad(p, 0.25);
        adam.step(p);
        assertEquals(0.9502794203389762, w(p), 1e-12, "w after Adam step 3");
        assertEquals(3, adam.steps(), "steps");
        assertTrue(p.version() > version, "a step marks the parameters changed");
    }

    @Test
    void adamWDecaysWeightsDecoupledFromTheGradient() {
        Parameters p = one(2.0);
        Adam adamw = Adam.adamW(0.01, 0.1);
        setGrad(p, 0.0);
        adamw.step(p);
        // Zero gradient: moments stay 0, only the decay p·(1 - lr·wd) acts.
        assertEquals(2.0 * (1 - 0.01 * 0.1), w(p), 1e-15, "w after one AdamW step with zero gradient");
        Parameters q = one(2.0);
        Adam a = Adam.adamW(0.01, 0.1);
        setGrad(q, 3.0);
        a.step(q);
        assertEquals(2.0 * 0.999 - 0.01 * 3.0 / (3.0 + 1e-8), w(q), 1e-15, "w after one AdamW step");
    }

    @Test
    void sgdWithMomentumAndNesterov() {
        Parameters p = one(1.0);
        Sgd sgd = new Sgd(0.1, 0.9);
        setGrad(p, 1.0);
        sgd.step(p);
        assertEquals(0.9, w(p), 1e-15, "w after SGD step 1 (buf = g)");
        sgd.step(p);
        assertEquals(0.9 - 0.1 * 1.9, w(p), 1e-15, "w after SGD step 2 (buf = 0.9·1 + 1)");
        assertEquals(1.9, sgd.momentumBuffer(p, "w").data()[0], 1e-15, "momentum buffer");

        Parameters n = one(1.0);
        Sgd nesterov = new Sgd(0.1, 0.9, 0, true);
        setGrad(n, 1.0);
        nesterov.step(n);
        assertEquals(1.0 - 0.1 * 1.9, w(n), 1e-15, "w after Nesterov step 1 (g + 0.9·buf, buf = 1)");
        nesterov.step(n);
        assertEquals(0.81 - 0.1 * (1 + 0.9 * 1.9), w(n), 1e-15, "w after Nesterov step 2");

        Parameters d = one(1.0);
        Sgd decay = new Sgd(0.5, 0, 0.2, false);
        setGrad(d, 0.4);
        decay.step(d);
        assertEquals(1.0 * (1 - 0.5 * 0.2) - 0.5 * 0.4, w(d), 1e-15, "w after plain SGD with decoupled decay");
    }

    @Test
    void clippingByGlobalNormAndByValue() {
        Parameters p = new Parameters();
        p.add("a", Tensor.zeros(2));
        p.add("b", Tensor.zeros(1));
        p.grad("a").data()[0] = 3;
        p.grad("a").data()[1] = 4;
        p.grad("b").data()[0] = 12;
        assertEquals(13.0, GradientClipping.globalNorm(p), 0.0, "global norm of (3, 4, 12)");
        assertEquals(13.0, GradientClipping.clipByGlobalNorm(p, 100), 0.0, "norm returned without clipping");
        assertEquals(3.0, p.grad("a").data()[0], 0.0, "unclipped a[0]");
        assertEquals(13.0, GradientClipping.clipByGlobalNorm(p, 6.5), 0.0, "norm before clipping");
        assertEquals(1.5, p.grad("a").data()[0], 0.0, "clipped a[0]");
        assertEquals(2.0, p.grad("a").data()[1], 0.0, "clipped a[1]");
        assertEquals(6.0, p.grad("b").data()[0], 0.0, "clipped b[0]");
        assertEquals(6.5, GradientClipping.globalNorm(p), 1e-15, "norm after clipping");

        p.grad("a").data()[0] = 3;
        p.grad("a").data()[1] = -4;
        p.grad("b").data()[0] = 0.5;
        assertEquals(2, GradientClipping.clipByValue(p, 1.0), "elements clipped");
        assertEquals(1.0, p.grad("a").data()[0], 0.0, "a[0] clipped to 1");
        assertEquals(-1.0, p.grad("a").data()[1], 0.0, "a[1] clipped to -1");
        assertEquals(0.5, p.grad("b").data()[0], 0.0, "b[0] unchanged");
    }

    @Test
    void samplingSchedules() {
        assertEquals(0.7, SamplingSchedule.constant(0.7).teacherForcing(1000), 0.0, "constant");
        SamplingSchedule lin = SamplingSchedule.linear(1.0, 0.001, 0.25);
        assertEquals(1.0, lin.teacherForcing(0), 0.0, "linear at 0");
        assertEquals(0.5, lin.teacherForcing(500), 1e-15, "linear at 500");
        assertEquals(0.25, lin.teacherForcing(10_000), 0.0, "linear floor");
        assertEquals(Math.pow(0.99, 10), SamplingSchedule.exponential(0.99).teacherForcing(10), 1e-15, "exponential");
        assertEquals(10 / (10 + Math.exp(2.0)), SamplingSchedule.inverseSigmoid(10).teacherForcing(20), 1e-15, "inverse sigmoid");
    }

    @Test
    void badHyperparametersAreRefusedNamingThem() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new Adam(0)).getMessage().startsWith("lr:"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new Adam(0.1, 1.0, 0.999, 1e-8, 0)).getMessage().startsWith("beta1:"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new Sgd(0.1, -0.5)).getMessage().startsWith("momentum:"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new Sgd(0.1, 0, 0, true)).getMessage().startsWith("nesterov:"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> GradientClipping.clipByGlobalNorm(new Parameters(), 0))
                .getMessage().startsWith("maxNorm:"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> SamplingSchedule.constant(1.5)).getMessage().startsWith("p:"));
    }
}
