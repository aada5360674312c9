package dev.recur.backend.reference;

/**
 * The oracle for the kernels of {@link dev.recur.backend.TrainKernels}: each method is the equation of the kernel of
 * the same name (camel case: {@code adam_step} is {@link #adamStep}) as written in {@code kernels/common/*.h}, in
 * float64 on plain arrays, with nothing fused, reordered or vectorised. Arrays are row-major; the in/out arrays are
 * updated in place like the device buffers. These are checked against PyTorch in {@code ReferenceTrainKernelsTest}
 * (fixtures written by {@code tests/fixtures/make_train_fixtures.py}) and every device kernel against them.
 */
public final class ReferenceTrainKernels {
    private ReferenceTrainKernels() {}

    /**
     * {@code adam_step} on {@code p[off, off+n)}: PyTorch's Adam ({@code decoupled == false}: L2 decay added to the
     * gradient) or AdamW ({@code true}: {@code p *= 1 - lr*wd} first), {@code step} counting from 1.
     */
    public static void adamStep(int off, int n, int step, double lr, double beta1, double beta2, double eps, double wd,
                                boolean decoupled, double scale, double[] p, double[] g, double[] m, double[] v) {
        double bc1 = 1 - Math.pow(beta1, step), bc2 = 1 - Math.pow(beta2, step);
        for (int i = off; i < off + n; i++) {
            double gi = g[i] * scale;
            if (decoupled) p[i] *= 1 - lr * wd;
            else gi += wd * p[i];
            m[i] = beta1 * m[i] + (1 - beta1) * gi;
            v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
            p[i] -= lr / bc1 * m[i] / (Math.sqrt(v[i]) / Math.sqrt(bc2) + eps);
        }
    }

    /** {@code sgd_step} on {@code p[off, off+n)}: PyTorch's SGD with weight decay, momentum, dampening, Nesterov. */
    public static void sgdStep(int off, int n, boolean first, double lr, double momentum, double dampening, double wd,
                               boolean nesterov, double scale, double[] p, double[] g, double[] buf) {
        for (int i = off; i < off + n; i++) {
            double d = g[i] * scale + wd * p[i];
            if (momentum != 0) {
                buf[i] = first ? d : momentum * buf[i] + (1 - dampening) * d;
                d = nesterov ? d + momentum * buf[i] : buf[i];
            }
            p[i] -= lr * d;
        }
    }

    /** The global L2 norm of {@code x[off, off+n)} (what {@code grad_norm_partial} and {@code grad_clip_scale} compute). */
    public static double gradNorm(double[] x, int off, int n) {
        double s = 0;
        for (int i = off; i < off + n; i++) s += x[i] * x[i];
        return Math.sqrt(s);
    }

    /** {@code grad_clip_scale}'s coefficient for a global norm: {@code min(1, maxNorm / (norm + 1e-6))}. */
    public static double gradClipScale(double norm, double maxNorm) {
        return Math.min(1, maxNorm / (norm + 1e-6));
    }

    /**
     * {@code softmax_xent_fwd_bwd}: per-row loss {@code [N]} into {@code loss}, and {@code dlogits [N,V]}; padded rows
     * 0; a target outside {@code [0,V)} gives NaN.
     */
    public static void softmaxXentFwdBwd(int N, int V, int pad, double[] logits, int[] targets, double[] loss,
                                         double[] dlogits) {
        int count = 0;
        for (int r = 0; r < N; r++) if (targets[r] != pad) count++;
        for (int r = 0; r < N; r++) {
            int t = targets[r];
            if (t == pad || t < 0 || t >= V) {
                double fill = t == pad ? 0 : Double.NaN;
                loss[r] = fill;
                java.util.Arrays.fill(dlogits, r * V, (r + 1) * V, fill);
                continue;
            }
            double mx = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < V; j++) mx = Math.max(mx, logits[r * V + j]);
            double s = 0;
            for (int j = 0; j < V; j++) s += Math.exp(logits[r * V + j] - mx);
            double lse = mx + Math.log(s);
            loss[r] = lse - logits[r * V + t];
            for (int j = 0; j < V; j++) {
                dlogits[r * V + j] = (Math.exp(logits[r * V + j] - lse) - (j == t ? 1 : 0)) / count;
            }
        }
    }

    /** {@code softmax_xent_mean}: the mean of {@code loss} over the rows whose target is not {@code pad} (0 if none). */
    public static double softmaxXentMean(int N, int pad, int[] targets, double[] loss) {
        double sum = 0;
        int count = 0;
        for (int r = 0; r < N; r++) {
            if (targets[r] == pad) continue;
            sum += loss[r];
            count++;
        }
        return count == 0 ? 0 : sum / count;
    }

    /** {@code embedding_fwd}: {@code out[n,:] = weight[ids[n],:]}, 0 for an id outside {@code [0,V)}. */
    public static double[] embeddingFwd(int N, int E, int V, int[] ids, double[] weight) {
        double[] out = new double[N * E];
        for (int n = 0; n < N; n++) {
            if (ids[n] < 0 || ids[n] >= V) continue;
            System.arraycopy(weight, ids[n] * E, out, n * E, E);
        }
        return out;
    }

    /**
     * {@code embedding_bwd_index} then {@code embedding_bwd}: {@code dweight = beta*dweight + sum of dout[n,:]} into
     * row {@code ids[n]} for every position whose id is in {@code [0,V)} and not {@code pad}.
     */
    public static void embeddingBwd(int N, int E, int V, int pad, int[] ids, double[] dout, double[] dweight,
                                    double beta) {
        for (int i = 0; i < V * E; i++) dweight[i] = beta == 0 ? 0 : beta * dweight[i];
        for (int n = 0; n < N; n++) {
            int v = ids[n];
            if (v == pad || v < 0 || v >= V) continue;
            for (int e = 0; e < E; e++) dweight[v * E + e] += dout[n * E + e];
        }
    }

    /** {@code source_mask}'s lengths: per item b, 1 + the last t with {@code ids[t*B + b] != pad} (0 if none). */
    public static int[] sourceLengths(int T, int B, int pad, int[] ids) {
        int[] len = new int[B];
        for (int b = 0; b < B; b++) for (int t = 0; t < T; t++) if (ids[t * B + b] != pad) len[b] = t + 1;
        return len;
    }

    /** {@code source_mask}'s mask {@code [B,T]}: 1 where {@code t < lengths[b]}, else 0. */
    public static int[] sourceMask(int T, int B, int[] lengths) {
        int[] mask = new int[B * T];
        for (int b = 0; b < B; b++) for (int t = 0; t < lengths[b]; t++) mask[b * T + t] = 1;
        return mask;
    }

    /** {@code argmax_rows}: the first index of each row's maximum, NaN passed over (0 for an all-NaN row). */
    public static int[] argmaxRows(int N, int V, double[] x) {
        int[] idx = new int[N];
        for (int r = 0; r < N; r++) {
            int best = -1;
            for (int j = 0; j < V; j++) {
                double xj = x[r * V + j];
                if (!Double.isNaN(xj) && (best < 0 || xj > x[r * V + best])) best = j;
            }
            idx[r] = Math.max(best, 0);
        }
        return idx;
    }

    /**
     * {@code topk_rows}: per row the indexes of the K largest numbers, largest first, equal values by increasing
     * index, NaN passed over; -1 for the slots beyond the row's numbers. (Values are {@code x} at those indexes.)
     */
    public static int[] topkRows(int N, int V, int K, double[] x) {
        int[] idx = new int[N * K];
        for (int r = 0; r < N; r++) {
            final int row = r;
            Integer[] order = java.util.stream.IntStream.range(0, V).filter(j -> !Double.isNaN(x[row * V + j]))
                    .boxed().toArray(Integer[]::new);
            // A stable sort by value, descending: equal values keep increasing index.
            java.util.Arrays.sort(order, (a, b) -> Double.compare(x[row * V + b], x[row * V + a]));
            for (int q = 0; q < K; q++) idx[r * K + q] = q < order.length ? order[q] : -1;
        }
        return idx;
    }

    /**
     * {@code scheduled_feed}: row {@code r} takes {@code target[r]} when {@code TrainKernels.sampleUniform(seed, step, r)
     * < teacherForcing} (compared in float64), else {@code pred[r]}.
     */
    public static int[] scheduledFeed(int N, double teacherForcing, long seed, int step, int[] target, int[] pred) {
        int[] next = new int[N];
        for (int r = 0; r < N; r++) {
            next[r] = dev.recur.backend.TrainKernels.sampleUniform(seed, step, r) < teacherForcing ? target[r] : pred[r];
        }
        return next;
    }

    /** What {@link #sampleRows} returns: the drawn tokens and their untempered log-probabilities. */
    public record Samples(int[] idx, double[] logp) {}

    /**
     * {@code sample_rows} in float64: per row, the first {@code j} with {@code u*S < e_0 + ... + e_j} where
     * {@code e_j = exp((x_j - max)/T)}, {@code S} their sum and {@code u = TrainKernels.sampleUniform(seed, step, r)}
     * (the device's uniform exactly); when rounding leaves none, the last {@code j} whose {@code e_j} changed the
     * running sum. {@code logp[r]} = the token's log-probability under {@code softmax(x[r,:])}.
     */
    public static Samples sampleRows(int N, int V, double T, long seed, int step, double[] x) {
        return sampleRows(N, V, T, seed, step, x, 0);
    }

    /**
     * {@code sample_rows} with a top-k cut: with {@code topK > 0} only the tokens at or above the row's K-th largest
     * logit (counted with multiplicity, as {@code topk_rows} leaves it in {@code vals[r, K-1]}) are drawn; the
     * log-probability stays the untempered softmax over the whole row.
     */
    public static Samples sampleRows(int N, int V, double T, long seed, int step, double[] x, int topK) {
        int[] idx = new int[N];
        double[] logp = new double[N];
        for (int r = 0; r < N; r++) {
            double m = x[r * V];
            for (int j = 1; j < V; j++) m = Math.max(m, x[r * V + j]);
            double c = Double.NEGATIVE_INFINITY;
            if (topK > 0 && topK <= V) {
                double[] sorted = java.util.Arrays.copyOfRange(x, r * V, (r + 1) * V);
                java.util.Arrays.sort(sorted);
                c = sorted[V - topK];
            }
            double s = 0, s1 = 0;
            for (int j = 0; j < V; j++) {
                s += x[r * V + j] < c ? 0 : Math.exp((x[r * V + j] - m) / T);
                s1 += Math.exp(x[r * V + j] - m);
            }
            double target = dev.recur.backend.TrainKernels.sampleUniform(seed, step, r) * s, acc = 0;
            int tok = -1, last = 0;
            for (int j = 0; j < V && tok < 0; j++) {
                double next = acc + (x[r * V + j] < c ? 0 : Math.exp((x[r * V + j] - m) / T));
                if (next > acc) last = j;
                acc = next;
                if (target < acc) tok = j;
            }
            if (tok < 0) tok = last;
            idx[r] = tok;
            logp[r] = x[r * V + tok] - m - Math.log(s1);
        }
        return new Samples(idx, logp);
    }

    /** {@code bias_act_fwd}: {@code act(x + bias[f])} with act 0 identity, 1 tanh, 2 relu, 3 sigmoid. */
    public static double[] biasActFwd(int N, int F, int act, double[] x, double[] bias) {
        double[] y = new double[N * F];
        for (int n = 0; n < N; n++) {
            for (int f = 0; f < F; f++) {
                double a = x[n * F + f] + bias[f];
                y[n * F + f] = switch (act) {
                    case 1 -> Math.tanh(a);
                    case 2 -> Math.max(a, 0);
                    case 3 -> 1 / (1 + Math.exp(-a));
                    default -> a;
                };
            }
        }
        return y;
    }

    /** {@code bias_act_bwd}: {@code dy * act'} expressed through the forward's output {@code y}. */
    public static double[] biasActBwd(int N, int F, int act, double[] y, double[] dy) {
        double[] dx = new double[N * F];
        for (int i = 0; i < N * F; i++) {
            double d = switch (act) {
                case 1 -> 1 - y[i] * y[i];
                case 2 -> y[i] > 0 ? 1 : 0;
                case 3 -> y[i] * (1 - y[i]);
                default -> 1;
            };
            dx[i] = dy[i] * d;
        }
        return dx;
    }

    /** {@code copy_strided}: {@code dst[doff + r*dld + c] = src[soff + r*sld + c]}. */
    public static void copyStrided(int rows, int cols, double[] src, int soff, int sld, double[] dst, int doff, int dld) {
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) dst[doff + r * dld + c] = src[soff + r * sld + c];
        }
    }

    /**
     * {@code beam_candidates}: {@code cand [N, V]} for rows {@code N = B*K}: {@code s + log_softmax(logits[r])[t]} with
     * {@code s = score[r]} ({@code step} 0: 0 for the first row of each item, -inf for the others, none finished); a
     * finished row ({@code step > 0}, {@code tok[r] == end}) offers only {@code t = end} at {@code s}.
     */
    public static double[] beamCandidates(int N, int K, int V, int step, int end, double[] logits, int[] tok, double[] score) {
        double[] cand = new double[N * V];
        for (int r = 0; r < N; r++) {
            double s = step == 0 ? (r % K == 0 ? 0 : Double.NEGATIVE_INFINITY) : score[r];
            boolean finished = step > 0 && tok[r] == end;
            double mx = Double.NEGATIVE_INFINITY, sum = 0;
            for (int t = 0; t < V; t++) mx = Math.max(mx, logits[r * V + t]);
            for (int t = 0; t < V; t++) sum += Math.exp(logits[r * V + t] - mx);
            double lse = mx + Math.log(sum);
            for (int t = 0; t < V; t++) {
                cand[r * V + t] = finished ? (t == end ? s : Double.NEGATIVE_INFINITY) : s + (logits[r * V + t] - lse);
            }
        }
        return cand;
    }

    /**
     * {@code beam_update}: from {@code topk_rows}' {@code vals}, {@code idx [B, K]} over {@code [B, K*V]} candidates,
     * each slot's parent row, token and score (a slot without a live candidate: the item's first row, {@code end},
     * -inf), also written to row {@code step} of the histories {@code [steps, N]}. Arrays are updated in place.
     */
    public static void beamUpdate(int N, int K, int V, int step, int end, double[] vals, int[] idx, int[] parents,
                                  int[] tok, double[] score, int[] histTok, int[] histPar) {
        for (int r = 0; r < N; r++) {
            int base = r / K * K, i = idx[r];
            boolean alive = i >= 0 && vals[r] > Double.NEGATIVE_INFINITY;
            parents[r] = alive ? base + i / V : base;
            tok[r] = alive ? i % V : end;
            score[r] = alive ? vals[r] : Double.NEGATIVE_INFINITY;
            histTok[step * N + r] = tok[r];
            histPar[step * N + r] = parents[r];
        }
    }

    /**
     * {@code beam_backtrace}: after {@code S} steps, per item the row with a score above -inf that is finished (its
     * last token is {@code end}) before open ones, then of the highest {@code score / max(1, length)^alpha} ({@code length}
     * up to and including the first end token, else S), the lower row on ties (the item's first row if none is
     * alive); its tokens walked back through the histories into {@code out [B, S]}, the flat index
     * {@code s*N + parent} of each step's source row into {@code at [B, S]}, {@code (score, normalised)} into
     * {@code scores [B, 2]}.
     */
    public static void beamBacktrace(int B, int K, int S, int end, double alpha, double[] score, int[] histTok,
                                     int[] histPar, int[] out, int[] at, double[] scores) {
        int N = B * K;
        for (int b = 0; b < B; b++) {
            int pick = -1;
            boolean pickFin = false;
            double pickNorm = 0;
            for (int j = 0; j < K; j++) {
                int r = b * K + j;
                if (!(score[r] > Double.NEGATIVE_INFINITY)) continue;
                int[] walk = new int[S];
                for (int s = S - 1, row = r; s >= 0; s--) {
                    walk[s] = histTok[s * N + row];
                    row = histPar[s * N + row];
                }
                int len = S;
                for (int s = S - 1; s >= 0; s--) if (walk[s] == end) len = s + 1;
                boolean fin = walk[S - 1] == end;
                double norm = alpha == 0 ? score[r] : score[r] / Math.pow(Math.max(1, len), alpha);
                if (pick < 0 || (fin && !pickFin) || (fin == pickFin && norm > pickNorm)) {
                    pick = r;
                    pickFin = fin;
                    pickNorm = norm;
                }
            }
            if (pick < 0) {
                pick = b * K;
                pickNorm = score[pick];
            }
            for (int s = S - 1, row = pick; s >= 0; s--) {
                int p = histPar[s * N + row];
                out[b * S + s] = histTok[s * N + row];
                at[b * S + s] = s * N + p;
                row = p;
            }
            scores[2 * b] = score[pick];
            scores[2 * b + 1] = pickNorm;
        }
    }

    /** {@code repeat_rows_i32}: {@code [M*R, C]} with row q = row {@code q / R} of {@code src [M, C]}. */
    public static int[] repeatRowsI32(int M, int C, int R, int[] src) {
        int[] dst = new int[M * R * C];
        for (int q = 0; q < M * R; q++) System.arraycopy(src, q / R * C, dst, q * C, C);
        return dst;
    }

    /**
     * {@code mse_fwd_bwd}: {@code dpred = 2 (pred - target) / N} into {@code dpred}; returns the mean of
     * {@code (pred - target)^2} ({@code MeanSquaredError}'s definition).
     */
    public static double mseFwdBwd(int N, double[] pred, double[] target, double[] dpred) {
        double s = 0;
        for (int i = 0; i < N; i++) {
            double e = pred[i] - target[i];
            s += e * e;
            dpred[i] = 2 * e / N;
        }
        return s / N;
    }

    private static int poolLen(int[] lengths, int b, int T) {
        return Math.max(0, Math.min(lengths[b], T));
    }

    /** {@code pool_mean_fwd}: {@code out [B,W]}, the mean of time-major {@code y [T,B,W]} over each sequence's steps. */
    public static double[] poolMeanFwd(int T, int B, int W, double[] y, int[] lengths) {
        double[] out = new double[B * W];
        for (int b = 0; b < B; b++) {
            int len = poolLen(lengths, b, T);
            for (int j = 0; j < W; j++) {
                double s = 0;
                for (int t = 0; t < len; t++) s += y[(t * B + b) * W + j];
                out[b * W + j] = len > 0 ? s / len : 0;
            }
        }
        return out;
    }

    /** {@code pool_mean_bwd}: {@code dy [T,B,W]}, {@code dout[b,j] / len} at the pooled steps, 0 elsewhere. */
    public static double[] poolMeanBwd(int T, int B, int W, int[] lengths, double[] dout) {
        double[] dy = new double[T * B * W];
        for (int b = 0; b < B; b++) {
            int len = poolLen(lengths, b, T);
            for (int j = 0; j < W; j++) for (int t = 0; t < len; t++) dy[(t * B + b) * W + j] = dout[b * W + j] / len;
        }
        return dy;
    }

    /**
     * {@code pool_max_fwd}: {@code out [B,W]} (returned) and {@code idx [B,W]} (written): the max of each column over
     * the sequence's steps and the first step holding it ({@code Pooling.MAX}: moves only on a greater value);
     * an empty sequence gives 0 and -1.
     */
    public static double[] poolMaxFwd(int T, int B, int W, double[] y, int[] lengths, int[] idx) {
        double[] out = new double[B * W];
        for (int b = 0; b < B; b++) {
            int len = poolLen(lengths, b, T);
            for (int j = 0; j < W; j++) {
                if (len == 0) {
                    idx[b * W + j] = -1;
                    continue;
                }
                int best = 0;
                for (int t = 1; t < len; t++) if (y[(t * B + b) * W + j] > y[(best * B + b) * W + j]) best = t;
                idx[b * W + j] = best;
                out[b * W + j] = y[(best * B + b) * W + j];
            }
        }
        return out;
    }

    /** {@code pool_max_bwd}: {@code dy [T,B,W]}, {@code dout[b,j]} at step {@code idx[b,j]}, 0 elsewhere. */
    public static double[] poolMaxBwd(int T, int B, int W, int[] idx, double[] dout) {
        double[] dy = new double[T * B * W];
        for (int b = 0; b < B; b++) {
            for (int j = 0; j < W; j++) {
                int s = idx[b * W + j];
                if (s >= 0 && s < T) dy[(s * B + b) * W + j] = dout[b * W + j];
            }
        }
        return dy;
    }
}
