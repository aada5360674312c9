package dev.recur.backend.cpu;

import dev.recur.backend.TrainKernels;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The kernels of {@link TrainKernels} as Java code for the {@code cpu} backend, with the argument lists of the
 * catalogue and the semantics of their {@code kernels/common} bodies ({@code optim.h}, {@code xent.h},
 * {@code embedding.h}, {@code decode.h}, {@code pointwise.h}, {@code beam.h}, {@code loss.h}, {@code pool.h}; the
 * equations are there). Every sum is taken in the device kernel's order (so {@code grad_norm_partial}'s strided
 * partial sums are the same numbers), and large launches are split over the pool by rows or element chunks, never
 * inside a sum.
 */
final class CpuTrainKernels {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    private static final ValueLayout.OfInt I = ValueLayout.JAVA_INT;
    /** Elements per task of an elementwise launch split over the pool. */
    private static final int CHUNK = 1 << 14;

    private CpuTrainKernels() {}

    /** Registers every kernel of {@link TrainKernels} with {@code CpuKernels}' spec table. */
    static void register(SpecSink sink) {
        sink.spec(TrainKernels.ADAM_STEP, "off:i n:i lr:f beta1:f beta2:f eps:f wd:f decoupled:i bc1:f bc2:f scale:F p:F "
                + "g:F m:F v:F", CpuTrainKernels::adamStep);
        sink.spec(TrainKernels.SGD_STEP, "off:i n:i first:i lr:f momentum:f dampening:f wd:f nesterov:i scale:F p:F g:F "
                + "buf:F", CpuTrainKernels::sgdStep);
        sink.spec(TrainKernels.GRAD_NORM_PARTIAL, "off:i n:i P:i x:F poff:i parts:F", CpuTrainKernels::gradNormPartial);
        sink.spec(TrainKernels.GRAD_CLIP_SCALE, "nparts:i parts:F maxNorm:f norm:F scale:F", CpuTrainKernels::gradClipScale);
        sink.spec(TrainKernels.SOFTMAX_XENT_FWD_BWD, "N:i V:i pad:i logits:F targets:I loss:F dlogits:F",
                CpuTrainKernels::softmaxXentFwdBwd);
        sink.spec(TrainKernels.SOFTMAX_XENT_MEAN, "N:i pad:i targets:I loss:F out:F", CpuTrainKernels::softmaxXentMean);
        sink.spec(TrainKernels.EMBEDDING_FWD, "N:i E:i V:i ids:I weight:F out:F", CpuTrainKernels::embeddingFwd);
        sink.spec(TrainKernels.EMBEDDING_BWD_INDEX, "N:i V:i pad:i ids:I start:I order:I",
                CpuTrainKernels::embeddingBwdIndex);
        sink.spec(TrainKernels.EMBEDDING_BWD, "V:i E:i start:I order:I dout:F dweight:F beta:f",
                CpuTrainKernels::embeddingBwd);
        sink.spec(TrainKernels.ARGMAX_ROWS, "N:i V:i x:F idx:I", CpuTrainKernels::argmaxRows);
        sink.spec(TrainKernels.TOPK_ROWS, "N:i V:i K:i x:F vals:F idx:I", CpuTrainKernels::topkRows);
        sink.spec(TrainKernels.SOURCE_MASK, "T:i B:i pad:i ids:I lengths:I mask:I", CpuTrainKernels::sourceMask);
        sink.spec(TrainKernels.BIAS_ACT_FWD, "N:i F:i act:i x:F bias:F y:F", CpuTrainKernels::biasActFwd);
        sink.spec(TrainKernels.BIAS_ACT_BWD, "N:i F:i act:i y:F dy:F dx:F", CpuTrainKernels::biasActBwd);
        sink.spec(TrainKernels.SAMPLE_ROWS, "N:i V:i T:f seedLo:i seedHi:i step:i wantLogp:i cutOff:i "
                + "cutStride:i x:F cut:F idx:I logp:F",
                CpuTrainKernels::sampleRows);
        sink.spec(TrainKernels.SCHEDULED_FEED, "N:i threshold:i seedLo:i seedHi:i step:i target:I tgtOff:i pred:I next:I "
                + "outOff:i", CpuTrainKernels::scheduledFeed);
        sink.spec(TrainKernels.COPY_STRIDED, "rows:i cols:i src:F soff:i sld:i dst:F doff:i dld:i",
                CpuTrainKernels::copyStrided);
        sink.spec(TrainKernels.BEAM_CANDIDATES, "N:i K:i V:i step:i end:i logits:F tok:I score:F cand:F",
                CpuTrainKernels::beamCandidates);
        sink.spec(TrainKernels.BEAM_UPDATE, "N:i K:i V:i step:i end:i vals:F idx:I parents:I tok:I score:F histTok:I "
                + "histPar:I", CpuTrainKernels::beamUpdate);
        sink.spec(TrainKernels.BEAM_BACKTRACE, "B:i K:i S:i end:i alpha:f score:F histTok:I histPar:I out:I at:I scores:F",
                CpuTrainKernels::beamBacktrace);
        sink.spec(TrainKernels.REPEAT_ROWS_I32, "M:i C:i R:i src:I dst:I", CpuTrainKernels::repeatRowsI32);
        sink.spec(TrainKernels.MSE_FWD_BWD, "N:i pred:F target:F dpred:F out:F", CpuTrainKernels::mseFwdBwd);
        sink.spec(TrainKernels.POOL_MEAN_FWD, "T:i B:i W:i y:F yoff:i lengths:I out:F", CpuTrainKernels::poolMeanFwd);
        sink.spec(TrainKernels.POOL_MEAN_BWD, "T:i B:i W:i lengths:I dout:F dy:F dyoff:i", CpuTrainKernels::poolMeanBwd);
        sink.spec(TrainKernels.POOL_MAX_FWD, "T:i B:i W:i y:F yoff:i lengths:I out:F idx:I", CpuTrainKernels::poolMaxFwd);
        sink.spec(TrainKernels.POOL_MAX_BWD, "T:i B:i W:i idx:I dout:F dy:F dyoff:i", CpuTrainKernels::poolMaxBwd);
    }

    @FunctionalInterface
    interface SpecSink {
        void spec(String name, String signature, CpuKernels.Body body);
    }

    private static float ld(MemorySegment s, long i) {
        return s.getAtIndex(F, i);
    }

    private static void st(MemorySegment s, long i, float v) {
        s.setAtIndex(F, i, v);
    }

    private static int ldi(MemorySegment s, long i) {
        return s.getAtIndex(I, i);
    }

    /** Runs {@code body(lo, hi)} over [0, n) in chunks, over the pool when the launch is large. */
    private static void chunks(CpuKernels k, int n, java.util.function.BiConsumer<Integer, Integer> body) {
        int nc = (n + CHUNK - 1) / CHUNK;
        k.rows(nc, CHUNK, (c, th) -> body.accept(c * CHUNK, Math.min(n, (c + 1) * CHUNK)));
    }

    // ---------------------------------------------------------------------------------------------------------
    // optim.h

    private static void adamStep(CpuKernels k, CpuKernels.Args a) {
        int off = a.i(0), n = a.ext(0, a.i(1)), decoupled = a.i(7);
        float lr = a.f(2), beta1 = a.f(3), beta2 = a.f(4), eps = a.f(5), wd = a.f(6), bc1 = a.f(8), bc2 = a.f(9);
        MemorySegment scale = a.m(10), p = a.m(11), g = a.m(12), m = a.m(13), v = a.m(14);
        float sc = ld(scale, 0);
        float sqrtBc2 = (float) Math.sqrt(bc2), stepSize = lr / bc1, decay = 1f - lr * wd;
        chunks(k, n, (lo, hi) -> {
            // Vectors of the same operations in the same order as the scalar tail (no fused multiply-adds), so an
            // element's result does not depend on where it falls.
            int e = lo;
            for (; e + L <= hi; e += L) {
                long i = (long) off + e;
                FloatVector pi = vld(p, i), gi = vld(g, i).mul(sc);
                if (decoupled != 0) pi = pi.mul(decay);
                else gi = gi.add(pi.mul(wd));
                FloatVector mi = vld(m, i).mul(beta1).add(gi.mul(1f - beta1));
                FloatVector vi = vld(v, i).mul(beta2).add(gi.mul(1f - beta2).mul(gi));
                FloatVector denom = vi.sqrt().div(sqrtBc2).add(eps);
                mi.intoMemorySegment(m, i * Float.BYTES, NATIVE);
                vi.intoMemorySegment(v, i * Float.BYTES, NATIVE);
                pi.sub(mi.div(denom).mul(stepSize)).intoMemorySegment(p, i * Float.BYTES, NATIVE);
            }
            for (; e < hi; e++) {
                long i = (long) off + e;
                float pi = ld(p, i), gi = ld(g, i) * sc;
                if (decoupled != 0) pi *= decay;
                else gi += wd * pi;
                float mi = beta1 * ld(m, i) + (1f - beta1) * gi;
                float vi = beta2 * ld(v, i) + (1f - beta2) * gi * gi;
                float denom = (float) Math.sqrt(vi) / sqrtBc2 + eps;
                st(m, i, mi);
                st(v, i, vi);
                st(p, i, pi - stepSize * (mi / denom));
            }
        });
    }

    private static void sgdStep(CpuKernels k, CpuKernels.Args a) {
        int off = a.i(0), n = a.ext(0, a.i(1));
        boolean first = a.i(2) != 0, nesterov = a.i(7) != 0;
        float lr = a.f(3), momentum = a.f(4), dampening = a.f(5), wd = a.f(6);
        MemorySegment scale = a.m(8), p = a.m(9), g = a.m(10), buf = a.m(11);
        float sc = ld(scale, 0);
        chunks(k, n, (lo, hi) -> {
            int e = lo;
            for (; e + L <= hi; e += L) {
                long i = (long) off + e;
                FloatVector pi = vld(p, i);
                FloatVector d = vld(g, i).mul(sc).add(pi.mul(wd));
                if (momentum != 0f) {
                    FloatVector b = first ? d : vld(buf, i).mul(momentum).add(d.mul(1f - dampening));
                    b.intoMemorySegment(buf, i * Float.BYTES, NATIVE);
                    d = nesterov ? d.add(b.mul(momentum)) : b;
                }
                pi.sub(d.mul(lr)).intoMemorySegment(p, i * Float.BYTES, NATIVE);
            }
            for (; e < hi; e++) {
                long i = (long) off + e;
                float pi = ld(p, i);
                float d = ld(g, i) * sc + wd * pi;
                if (momentum != 0f) {
                    float b = first ? d : momentum * ld(buf, i) + (1f - dampening) * d;
                    st(buf, i, b);
                    d = nesterov ? d + momentum * b : b;
                }
                st(p, i, pi - lr * d);
            }
        });
    }

    /**
     * The device's partial sums, each over x[off+q], x[off+q+P], ... in that order, computed a row of P at a time
     * (vectors across q) so memory is read once, front to back.
     */
    private static void gradNormPartial(CpuKernels k, CpuKernels.Args a) {
        int off = a.i(0), n = a.i(1), P = a.i(2), poff = a.i(4);
        MemorySegment x = a.m(3), parts = a.m(5);
        int nq = a.ext(0, P);
        float[] acc = new float[nq];
        int qv = nq - nq % L;
        for (int base = 0; base < n; base += P) {
            int w = Math.min(nq, n - base);
            int wv = Math.min(qv, w - w % L);
            for (int q = 0; q < wv; q += L) {
                FloatVector xv = FloatVector.fromMemorySegment(S, x, ((long) off + base + q) * Float.BYTES, NATIVE);
                xv.fma(xv, FloatVector.fromArray(S, acc, q)).intoArray(acc, q);
            }
            for (int q = wv; q < w; q++) {
                float xi = ld(x, (long) off + base + q);
                acc[q] = Math.fma(xi, xi, acc[q]);
            }
        }
        for (int q = 0; q < nq; q++) st(parts, (long) poff + q, acc[q]);
    }

    private static void gradClipScale(CpuKernels k, CpuKernels.Args a) {
        int nparts = a.i(0);
        MemorySegment parts = a.m(1), norm = a.m(3), scale = a.m(4);
        float total = 0f;
        for (int q = 0; q < nparts; q++) total += ld(parts, q);
        float nrm = (float) Math.sqrt(total);
        float coef = a.f(2) / (nrm + 1e-6f);
        st(norm, 0, nrm);
        st(scale, 0, coef < 1f ? coef : 1f);
    }

    // ---------------------------------------------------------------------------------------------------------
    // xent.h

    private static void softmaxXentFwdBwd(CpuKernels k, CpuKernels.Args a) {
        int N = a.i(0), V = a.i(1), pad = a.i(2);
        MemorySegment logits = a.m(3), targets = a.m(4), loss = a.m(5), dlogits = a.m(6);
        int count = 0;
        for (int q = 0; q < N; q++) count += ldi(targets, q) != pad ? 1 : 0;
        float inv = 1f / (float) count;
        k.rows(a.ext(0, N), V, (r, th) -> {
            long x = (long) r * V;
            int t = ldi(targets, r);
            if (t == pad || t < 0 || t >= V) {
                float fill = t == pad ? 0f : Float.NaN;
                st(loss, r, fill);
                for (int j = 0; j < V; j++) st(dlogits, x + j, fill);
                return;
            }
            // Vectors across the row; the sum's order is fixed by the lane count, so runs repeat bit for bit.
            int vv = V - V % L;
            float mx = ld(logits, x);
            for (int j = 1; j < V; j++) mx = Math.max(mx, ld(logits, x + j));
            FloatVector acc = FloatVector.zero(S);
            for (int j = 0; j < vv; j += L) acc = acc.add(CpuMath.exp(vld(logits, x + j).sub(mx)));
            float s = CpuMath.sumLanes(acc);
            for (int j = vv; j < V; j++) s += CpuMath.exp(ld(logits, x + j) - mx);
            float lse = mx + (float) Math.log(s);
            float xt = ld(logits, x + t);
            st(loss, r, lse - xt);
            for (int j = 0; j < vv; j += L) {
                CpuMath.exp(vld(logits, x + j).sub(lse)).mul(inv).intoMemorySegment(dlogits, (x + j) * Float.BYTES, NATIVE);
            }
            for (int j = vv; j < V; j++) st(dlogits, x + j, CpuMath.exp(ld(logits, x + j) - lse) * inv);
            st(dlogits, x + t, (CpuMath.exp(xt - lse) - 1f) * inv);
        });
    }

    private static void softmaxXentMean(CpuKernels k, CpuKernels.Args a) {
        int N = a.i(0), pad = a.i(1);
        MemorySegment targets = a.m(2), loss = a.m(3), out = a.m(4);
        float sum = 0f;
        int count = 0;
        for (int r = 0; r < N; r++) {
            if (ldi(targets, r) == pad) continue;
            sum += ld(loss, r);
            count++;
        }
        st(out, 0, count > 0 ? sum / (float) count : 0f);
    }

    // ---------------------------------------------------------------------------------------------------------
    // embedding.h

    private static void embeddingFwd(CpuKernels k, CpuKernels.Args a) {
        int N = a.i(0), E = a.i(1), V = a.i(2);
        MemorySegment ids = a.m(3), weight = a.m(4), out = a.m(5);
        int ne = a.ext(0, E);
        k.rows(a.ext(1, N), ne, (n, th) -> {
            int v = ldi(ids, n);
            long o = (long) n * E;
            if (v >= 0 && v < V) {
                MemorySegment.copy(weight, (long) v * E * Float.BYTES, out, o * Float.BYTES, (long) ne * Float.BYTES);
            } else {
                out.asSlice(o * Float.BYTES, (long) ne * Float.BYTES).fill((byte) 0);
            }
        });
    }

    private static void embeddingBwdIndex(CpuKernels k, CpuKernels.Args a) {
        int N = a.i(0), V = a.i(1), pad = a.i(2);
        MemorySegment ids = a.m(3), start = a.m(4), order = a.m(5);
        // kernels/common/embedding.h: counts at start[v+2], prefix sums, then start[v+1] is id v's cursor.
        int[] s = new int[V + 1];
        for (int n = 0; n < N; n++) {
            int v = ldi(ids, n);
            if (v != pad && v >= 0 && v + 2 <= V) s[v + 2]++;
        }
        for (int v = 1; v <= V; v++) s[v] += s[v - 1];
        for (int n = 0; n < N; n++) {
            int v = ldi(ids, n);
            if (v != pad && v >= 0 && v < V) order.setAtIndex(I, s[v + 1]++, n);
        }
        MemorySegment.copy(s, 0, start, I, 0, V + 1);
    }

    private static void embeddingBwd(CpuKernels k, CpuKernels.Args a) {
        int V = a.i(0), E = a.i(1);
        MemorySegment start = a.m(2), order = a.m(3), dout = a.m(4), dweight = a.m(5);
        float beta = a.f(6);
        int ne = a.ext(0, E), nv = ne - ne % L;
        k.rows(a.ext(1, V), ne, (v, th) -> {
            long row = (long) v * E;
            int k0 = ldi(start, v), k1 = ldi(start, v + 1);
            // Whole dout rows at a time (vectors across e); each element's sum still runs over q in order.
            float[] acc = k.buf(th, 0, ne);
            java.util.Arrays.fill(acc, 0, ne, 0f);
            for (int q = k0; q < k1; q++) {
                long src = (long) ldi(order, q) * E;
                for (int e = 0; e < nv; e += L) vld(dout, src + e).add(FloatVector.fromArray(S, acc, e)).intoArray(acc, e);
                for (int e = nv; e < ne; e++) acc[e] += ld(dout, src + e);
            }
            for (int e = 0; e < ne; e++) st(dweight, row + e, (beta == 0f ? 0f : beta * ld(dweight, row + e)) + acc[e]);
        });
    }

    // ---------------------------------------------------------------------------------------------------------
    // decode.h

    private static void sourceMask(CpuKernels k, CpuKernels.Args a) {
        int T = a.i(0), B = a.i(1), pad = a.i(2);
        MemorySegment ids = a.m(3), lengths = a.m(4), mask = a.m(5);
        k.rows(a.ext(0, B), 2 * T, (b, th) -> {
            int len = 0;
            for (int t = 0; t < T; t++) if (ids.getAtIndex(I, (long) t * B + b) != pad) len = t + 1;
            lengths.setAtIndex(I, b, len);
            for (int t = 0; t < T; t++) mask.setAtIndex(I, (long) b * T + t, t < len ? 1 : 0);
        });
    }

    private static void argmaxRows(CpuKernels k, CpuKernels.Args a) {
        int N = a.i(0), V = a.i(1);
        MemorySegment x = a.m(2), idx = a.m(3);
        k.rows(a.ext(0, N), V, (r, th) -> {
            long row = (long) r * V;
            int best = 0;
            float bv = ld(x, row);
            for (int j = 1; j < V; j++) {
                float xj = ld(x, row + j);
                if (xj > bv || (Float.isNaN(bv) && !Float.isNaN(xj))) {
                    bv = xj;
                    best = j;
                }
            }
            idx.setAtIndex(I, r, best);
        });
    }

    /** feed.h: the uniform's 24 bits against the threshold, as unsigned integers. */
    private static void scheduledFeed(CpuKernels k, CpuKernels.Args a) {
        int N = a.i(0), threshold = a.i(1);
        long seed = (a.i(2) & 0xFFFFFFFFL) | ((long) a.i(3) << 32);
        int step = a.i(4), tgtOff = a.i(6), outOff = a.i(9);
        MemorySegment target = a.m(5), pred = a.m(7), next = a.m(8);
        k.rows(a.ext(0, N), 1, (r, th) -> {
            long bits = (long) (TrainKernels.sampleUniform(seed, step, r) * 0x1.0p24);
            next.setAtIndex(I, outOff + (long) r, bits < (threshold & 0xFFFFFFFFL)
                    ? target.getAtIndex(I, tgtOff + (long) r) : pred.getAtIndex(I, r));
        });
    }

    /** sample.h: scalar sums in the device's order (row by row, j ascending), CpuMath.exp as recur_exp. */
    private static void sampleRows(CpuKernels k, CpuKernels.Args a) {
        int N = a.i(0), V = a.i(1);
        float T = a.f(2);
        long seed = (a.i(3) & 0xFFFFFFFFL) | ((long) a.i(4) << 32);
        int step = a.i(5);
        boolean wantLogp = a.i(6) != 0;
        int cutOff = a.i(7), cutStride = a.i(8);
        MemorySegment x = a.m(9), cut = a.m(10), idx = a.m(11), logp = a.m(12);
        k.rows(a.ext(0, N), 3 * V, (r, th) -> {
            long row = (long) r * V;
            float c = cutStride > 0 ? ld(cut, cutOff + (long) r * cutStride) : 0f;
            boolean hasCut = cutStride > 0 && !Float.isNaN(c);
            float m = ld(x, row);
            for (int j = 1; j < V; j++) {
                float xj = ld(x, row + j);
                m = xj > m ? xj : m;
            }
            float s = 0f;
            for (int j = 0; j < V; j++) {
                float xj = ld(x, row + j);
                s += hasCut && xj < c ? 0f : CpuMath.exp((xj - m) / T);
            }
            float target = (float) TrainKernels.sampleUniform(seed, step, r) * s;
            float acc = 0f;
            int tok = -1, last = 0;
            for (int j = 0; j < V && tok < 0; j++) {
                float xj = ld(x, row + j);
                float next = acc + (hasCut && xj < c ? 0f : CpuMath.exp((xj - m) / T));
                if (next > acc) last = j;
                acc = next;
                if (target < acc) tok = j;
            }
            if (tok < 0) tok = last;
            idx.setAtIndex(I, r, tok);
            if (wantLogp) {
                float s1 = s;
                if (T != 1f || hasCut) {
                    s1 = 0f;
                    for (int j = 0; j < V; j++) s1 += CpuMath.exp(ld(x, row + j) - m);
                }
                st(logp, r, ld(x, row + tok) - m - (float) Math.log(s1));
            }
        });
    }

    private static void topkRows(CpuKernels k, CpuKernels.Args a) {
        int N = a.i(0), V = a.i(1), K = a.i(2);
        MemorySegment x = a.m(3), vals = a.m(4), idx = a.m(5);
        k.rows(a.ext(0, N), V, (r, th) -> {
            long row = (long) r * V;
            float[] ov = new float[K];
            int[] oi = new int[K];
            int filled = 0;
            for (int j = 0; j < V; j++) {
                float xj = ld(x, row + j);
                if (Float.isNaN(xj) || (filled == K && !(xj > ov[K - 1]))) continue;
                int q = filled < K ? filled : K - 1;
                while (q > 0 && xj > ov[q - 1]) {
                    ov[q] = ov[q - 1];
                    oi[q] = oi[q - 1];
                    q--;
                }
                ov[q] = xj;
                oi[q] = j;
                if (filled < K) filled++;
            }
            for (int q = filled; q < K; q++) {
                ov[q] = Float.NaN;
                oi[q] = -1;
            }
            MemorySegment.copy(ov, 0, vals, F, (long) r * K * Float.BYTES, K);
            MemorySegment.copy(oi, 0, idx, I, (long) r * K * Integer.BYTES, K);
        });
    }

    // ---------------------------------------------------------------------------------------------------------
    // pointwise.h

    private static float act(int act, float v) {
        return switch (act) {
            case 1 -> CpuMath.tanh(v);
            case 2 -> v > 0f ? v : 0f;
            case 3 -> CpuMath.sigmoid(v);
            default -> v;
        };
    }

    private static float actGrad(int act, float y) {
        return switch (act) {
            case 1 -> 1f - y * y;
            case 2 -> y > 0f ? 1f : 0f;
            case 3 -> y * (1f - y);
            default -> 1f;
        };
    }

    private static FloatVector act(int act, FloatVector v) {
        return switch (act) {
            case 1 -> CpuMath.tanh(v);
            case 2 -> v.max(0f);
            case 3 -> CpuMath.sigmoid(v);
            default -> v;
        };
    }

    private static FloatVector vld(MemorySegment s, long i) {
        return FloatVector.fromMemorySegment(S, s, i * Float.BYTES, NATIVE);
    }

    private static void biasActFwd(CpuKernels k, CpuKernels.Args a) {
        int N = a.i(0), F = a.i(1), act = a.i(2);
        MemorySegment x = a.m(3), bias = a.m(4), y = a.m(5);
        int nf = a.ext(0, F), nv = nf - nf % L;
        k.rows(a.ext(1, N), nf, (n, th) -> {
            long row = (long) n * F;
            for (int f = 0; f < nv; f += L) {
                act(act, vld(x, row + f).add(vld(bias, f))).intoMemorySegment(y, (row + f) * Float.BYTES, NATIVE);
            }
            for (int f = nv; f < nf; f++) st(y, row + f, act(act, ld(x, row + f) + ld(bias, f)));
        });
    }

    private static void biasActBwd(CpuKernels k, CpuKernels.Args a) {
        int N = a.i(0), F = a.i(1), act = a.i(2);
        MemorySegment y = a.m(3), dy = a.m(4), dx = a.m(5);
        int nf = a.ext(0, F);
        k.rows(a.ext(1, N), nf, (n, th) -> {
            long row = (long) n * F;
            for (int f = 0; f < nf; f++) st(dx, row + f, ld(dy, row + f) * actGrad(act, ld(y, row + f)));
        });
    }

    private static void copyStrided(CpuKernels k, CpuKernels.Args a) {
        int rows = a.i(0), cols = a.i(1), soff = a.i(3), sld = a.i(4), doff = a.i(6), dld = a.i(7);
        MemorySegment src = a.m(2), dst = a.m(5);
        int nc = a.ext(0, cols);
        k.rows(a.ext(1, rows), nc, (r, th) -> MemorySegment.copy(src, ((long) soff + (long) r * sld) * Float.BYTES, dst,
                ((long) doff + (long) r * dld) * Float.BYTES, (long) nc * Float.BYTES));
    }

    // ---------------------------------------------------------------------------------------------------------
    // beam.h

    private static void beamCandidates(CpuKernels k, CpuKernels.Args a) {
        int N = a.i(0), K = a.i(1), V = a.i(2), step = a.i(3), end = a.i(4);
        MemorySegment logits = a.m(5), tok = a.m(6), score = a.m(7), cand = a.m(8);
        k.rows(a.ext(0, N), V, (r, th) -> {
            long x = (long) r * V;
            float s = step == 0 ? (r % K == 0 ? 0f : Float.NEGATIVE_INFINITY) : ld(score, r);
            if (step > 0 && ldi(tok, r) == end) {
                for (int t = 0; t < V; t++) st(cand, x + t, t == end ? s : Float.NEGATIVE_INFINITY);
                return;
            }
            // Vectors across the row as in softmax_xent_fwd_bwd: the sum's order is fixed by the lane count, so runs
            // repeat bit for bit (the device sums in index order; both are within float32 rounding of the reference).
            int vv = V - V % L;
            float mx = ld(logits, x);
            for (int t = 1; t < V; t++) mx = Math.max(mx, ld(logits, x + t));
            FloatVector acc = FloatVector.zero(S);
            for (int t = 0; t < vv; t += L) acc = acc.add(CpuMath.exp(vld(logits, x + t).sub(mx)));
            float sum = CpuMath.sumLanes(acc);
            for (int t = vv; t < V; t++) sum += CpuMath.exp(ld(logits, x + t) - mx);
            float lse = mx + (float) Math.log(sum), off = s - lse;
            for (int t = 0; t < vv; t += L) vld(logits, x + t).add(off).intoMemorySegment(cand, (x + t) * Float.BYTES, NATIVE);
            for (int t = vv; t < V; t++) st(cand, x + t, ld(logits, x + t) + off);
        });
    }

    private static void beamUpdate(CpuKernels k, CpuKernels.Args a) {
        int N = a.i(0), K = a.i(1), V = a.i(2), step = a.i(3), end = a.i(4);
        MemorySegment vals = a.m(5), idx = a.m(6), parents = a.m(7), tok = a.m(8), score = a.m(9), histTok = a.m(10),
                histPar = a.m(11);
        int n = a.ext(0, N);
        for (int r = 0; r < n; r++) {
            int base = (r / K) * K, i = ldi(idx, r), p, t;
            float v = ld(vals, r);
            if (i >= 0 && v > Float.NEGATIVE_INFINITY) {
                p = base + i / V;
                t = i % V;
            } else {
                p = base;
                t = end;
                v = Float.NEGATIVE_INFINITY;
            }
            parents.setAtIndex(I, r, p);
            tok.setAtIndex(I, r, t);
            st(score, r, v);
            histTok.setAtIndex(I, (long) step * N + r, t);
            histPar.setAtIndex(I, (long) step * N + r, p);
        }
    }

    private static void beamBacktrace(CpuKernels k, CpuKernels.Args a) {
        int B = a.i(0), K = a.i(1), S = a.i(2), end = a.i(3);
        float alpha = a.f(4);
        MemorySegment score = a.m(5), histTok = a.m(6), histPar = a.m(7), out = a.m(8), at = a.m(9), scores = a.m(10);
        int N = B * K;
        k.rows(a.ext(0, B), (long) K * S, (b, th) -> {
            int pick = -1;
            boolean pickFin = false;
            float pickNorm = 0f;
            for (int j = 0; j < K; j++) {
                int r = b * K + j;
                float lp = ld(score, r);
                if (!(lp > Float.NEGATIVE_INFINITY)) continue;
                int len = S, row = r;
                for (int s = S - 1; s >= 0; s--) {
                    if (ldi(histTok, (long) s * N + row) == end) len = s + 1;
                    row = ldi(histPar, (long) s * N + row);
                }
                boolean fin = ldi(histTok, (long) (S - 1) * N + r) == end;
                float d = Math.max(1, len);
                float norm = alpha == 0f ? lp : lp / (float) Math.exp(alpha * (float) Math.log(d));
                if (pick < 0 || (fin && !pickFin) || (fin == pickFin && norm > pickNorm)) {
                    pick = r;
                    pickFin = fin;
                    pickNorm = norm;
                }
            }
            if (pick < 0) {
                pick = b * K;
                pickNorm = ld(score, pick);
            }
            int row = pick;
            for (int s = S - 1; s >= 0; s--) {
                int p = ldi(histPar, (long) s * N + row);
                out.setAtIndex(I, (long) b * S + s, ldi(histTok, (long) s * N + row));
                at.setAtIndex(I, (long) b * S + s, s * N + p);
                row = p;
            }
            st(scores, 2L * b, ld(score, pick));
            st(scores, 2L * b + 1, pickNorm);
        });
    }

    private static void repeatRowsI32(CpuKernels k, CpuKernels.Args a) {
        int M = a.i(0), C = a.i(1), R = a.i(2);
        MemorySegment src = a.m(3), dst = a.m(4);
        int nc = a.ext(0, C);
        k.rows(a.ext(1, (long) M * R), nc, (q, th) -> MemorySegment.copy(src, (long) (q / R) * C * Integer.BYTES, dst,
                (long) q * C * Integer.BYTES, (long) nc * Integer.BYTES));
    }

    // loss.h

    private static void mseFwdBwd(CpuKernels k, CpuKernels.Args a) {
        int N = a.i(0), n = a.ext(0, N);
        MemorySegment pred = a.m(1), target = a.m(2), dpred = a.m(3), out = a.m(4);
        // Work item 0's sum first: it reads every prediction before any gradient is written (they are distinct buffers).
        if (n > 0) {
            float s = 0f;
            for (int q = 0; q < N; q++) {
                float e = ld(pred, q) - ld(target, q);
                s += e * e;
            }
            st(out, 0, s / (float) N);
        }
        chunks(k, n, (lo, hi) -> {
            for (int i = lo; i < hi; i++) st(dpred, i, 2f * (ld(pred, i) - ld(target, i)) / (float) N);
        });
    }

    // ---------------------------------------------------------------------------------------------------------
    // pool.h: rows are sequences b. Each walks its steps t in order and, within a step, its W contiguous columns
    // (the device kernel's per-column loop over t, interchanged so that memory is read front to back); every column's
    // sum or max still runs over t ascending, so the results are the device kernel's.

    private static int poolLen(MemorySegment lengths, int b, int T) {
        int len = ldi(lengths, b);
        return len < 0 ? 0 : Math.min(len, T);
    }

    private static void poolMeanFwd(CpuKernels k, CpuKernels.Args a) {
        int T = a.i(0), B = a.i(1), W = a.i(2), yoff = a.i(4);
        MemorySegment y = a.m(3), lengths = a.m(5), out = a.m(6);
        int nw = a.ext(0, W);
        k.rows(a.ext(1, B), (long) nw * T, (b, th) -> {
            int len = poolLen(lengths, b, T);
            float[] acc = k.buf(th, 0, nw);
            java.util.Arrays.fill(acc, 0, nw, 0f);
            for (int t = 0; t < len; t++) {
                long row = yoff + ((long) t * B + b) * W;
                for (int j = 0; j < nw; j++) acc[j] += ld(y, row + j);
            }
            for (int j = 0; j < nw; j++) st(out, (long) b * W + j, len > 0 ? acc[j] / (float) len : 0f);
        });
    }

    private static void poolMeanBwd(CpuKernels k, CpuKernels.Args a) {
        int T = a.i(0), B = a.i(1), W = a.i(2), dyoff = a.i(6);
        MemorySegment lengths = a.m(3), dout = a.m(4), dy = a.m(5);
        int nw = a.ext(0, W);
        k.rows(a.ext(1, B), (long) nw * T, (b, th) -> {
            int len = poolLen(lengths, b, T);
            float[] g = k.buf(th, 0, nw);
            for (int j = 0; j < nw; j++) g[j] = len > 0 ? ld(dout, (long) b * W + j) / (float) len : 0f;
            for (int t = 0; t < T; t++) {
                long row = dyoff + ((long) t * B + b) * W;
                for (int j = 0; j < nw; j++) st(dy, row + j, t < len ? g[j] : 0f);
            }
        });
    }

    private static void poolMaxFwd(CpuKernels k, CpuKernels.Args a) {
        int T = a.i(0), B = a.i(1), W = a.i(2), yoff = a.i(4);
        MemorySegment y = a.m(3), lengths = a.m(5), out = a.m(6), idx = a.m(7);
        int nw = a.ext(0, W);
        k.rows(a.ext(1, B), (long) nw * T, (b, th) -> {
            int len = poolLen(lengths, b, T);
            long o = (long) b * W;
            if (len == 0) {
                for (int j = 0; j < nw; j++) {
                    st(out, o + j, 0f);
                    idx.setAtIndex(I, o + j, -1);
                }
                return;
            }
            // The running max per column, and its step (a float: steps are far below 2^24).
            float[] bv = k.buf(th, 0, nw), best = k.buf(th, 1, nw);
            long row0 = yoff + (long) b * W;
            for (int j = 0; j < nw; j++) {
                bv[j] = ld(y, row0 + j);
                best[j] = 0f;
            }
            for (int t = 1; t < len; t++) {
                long row = yoff + ((long) t * B + b) * W;
                for (int j = 0; j < nw; j++) {
                    float v = ld(y, row + j);
                    if (v > bv[j]) {
                        bv[j] = v;
                        best[j] = t;
                    }
                }
            }
            for (int j = 0; j < nw; j++) {
                st(out, o + j, bv[j]);
                idx.setAtIndex(I, o + j, (int) best[j]);
            }
        });
    }

    private static void poolMaxBwd(CpuKernels k, CpuKernels.Args a) {
        int T = a.i(0), B = a.i(1), W = a.i(2), dyoff = a.i(6);
        MemorySegment idx = a.m(3), dout = a.m(4), dy = a.m(5);
        int nw = a.ext(0, W);
        k.rows(a.ext(1, B), (long) nw * T, (b, th) -> {
            long o = (long) b * W;
            for (int t = 0; t < T; t++) {
                long row = dyoff + ((long) t * B + b) * W;
                for (int j = 0; j < nw; j++) st(dy, row + j, ldi(idx, o + j) == t ? ld(dout, o + j) : 0f);
            }
        });
    }
}
