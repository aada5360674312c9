package dev.recur.backend;

/**
 * The catalogue of named kernels the shared schedule launches through
 * {@link DeviceBackend#launch}. The bodies are written once in {@code kernels/common/*.h}
 * and their entry points under the same names in {@code kernels/entry/*.h}, which {@code kernels/opencl/*.cl} and
 * {@code kernels/cuda/*.cu} include; a backend without a kernel compiler implements each name in Java from this
 * list. Each entry file opens with the equations; this page is the argument contract. The kernels around the networks (optimizers, clipping, the
 * loss, embeddings, decoding) are in {@link TrainKernels}, with checked launchers.
 *
 * <h2>Conventions</h2>
 * All per-layer tensors are row-major. {@code D} directions, {@code B} batch, {@code H} hidden,
 * {@code P} = Hout (the projection size, or H), {@code G} gate blocks, {@code GH = G*H},
 * {@code W} = the width of the layer's merged output, {@code I} = the layer's input width.
 * <ul>
 *   <li>{@code xw [T,B,D,GH]} the input projection {@code x W_ih^T} of every step (no bias);
 *       {@code hw [D,B,GH]} the recurrent projection of the current step (no bias);
 *       {@code bih, bhh [D,GH]}; {@code y [T,B,D,P]} a layer's per-direction outputs (for concat the
 *       merged output has the same layout); {@code h, hin [D,B,P]}, {@code c [D,B,H]} states.</li>
 *   <li>Step {@code s} of direction {@code d} for sequence {@code b} with length {@code len = lengths[b]}
 *       is active iff {@code s < len}; it processes time {@code t = s} (d = 0) or {@code t = len-1-s}
 *       (d = 1). The first step of a direction is {@code t = 0} (d = 0) or {@code t = len-1} (d = 1); the
 *       previous time is {@code t-1} (d = 0) or {@code t+1} (d = 1). An inactive step writes zeros at time
 *       position {@code s} of its per-time outputs (so padded positions are exactly 0 once the loop is done)
 *       and leaves the states unchanged.</li>
 *   <li>Dropout masks are computed inside the kernels with {@code DropoutMask}'s function
 *       ({@code kernels/common/random.h}) from {@code seedLo = (int) seed}, {@code seedHi = (int)(seed >>> 32)},
 *       {@code layer}, {@code thresh = DropoutMask.threshold(p)} and {@code scale = (float)(1/(1-p))}:
 *       {@code mask = thresh == 0 ? 1 : (bits(seed, stream, index) >= thresh ? scale : 0)}. Recurrent masks use
 *       {@code stream(layer, d, RECURRENT)} and index {@code b*P + j}.</li>
 *   <li>Saved gates ({@code gsave [T,B,D,SG]}): LSTM the activated gates in weight order (i,f,g,o, or i,g,o
 *       when coupled; SG = GH); GRU {@code r, z, n, hn} with {@code hn = (W_hn h~ + b_hn)} (SG = 4H).
 *       {@code csave [T,B,D,H]} the cell state c_t. RNN saves nothing (its {@code y} is h_t).</li>
 *   <li>Backward: {@code dy [T,B,D,P]} is the gradient on the layer's per-direction outputs;
 *       {@code dhN [D,B,P]}, {@code dcN [D,B,H]} the gradients on this layer's final states;
 *       {@code dhrec [D,B,P]} the result of the previous backward step's recurrent GEMM
 *       ({@code dgs · W_hh}, before the recurrent dropout mask); {@code dgs [D,B,GH]} this step's
 *       pre-activation gradients for that GEMM; {@code dgall [T,B,D,GH]} the same, stored by time, for the
 *       weight-gradient GEMMs after the loop. The incoming dh of an active step is
 *       {@code (s == len-1 ? dhN : dhrec*mask [+ ddir]) + dy[t]}.</li>
 *   <li>Grids are {@code {x, y, z}} with x fastest. Booleans are ints (0/1).</li>
 * </ul>
 *
 * <h2>Kernels</h2>
 * <pre>
 * rnn_step_fwd     grid {H,B,D}: s,T,B,H,D,act(0 tanh,1 relu), lengths, xw, hw, bih, bhh, h, y
 * rnn_step_bwd     grid {H,B,D}: s,T,B,H,D,act, lengths, dy, dhN, dhrec, y, dgs, dgall
 * lstm_step_fwd    grid {H,B,D}: s,T,B,H,D,P, proj,peep,coupled,training, lengths, xw, hw, bih, bhh, peepw,
 *                                c, h, hin, y, gsave, csave, mout, msave, seedLo,seedHi,layer,thresh,scale
 *                  (peepw [D,3,H] = w_ci,w_cf,w_co; with proj, h/hin/y are not written: m = o*tanh(c) goes to
 *                   mout [D,B,H] and msave [T,B,D,H], and lstm_proj_fwd finishes the step)
 * lstm_step_bwd    grid {H,B,D}: s,T,B,H,D,P, proj,peep,coupled, lengths, dy, dhN, dhrec, dm, dcN, dc,
 *                                gsave, csave, c0, peepw, dgs, dgall, seedLo,seedHi,layer,thresh,scale
 *                  (with proj the incoming dh is dm [D,B,H] = d(o*tanh c); dc [D,B,H] holds dc_t in, dc_{t-1} out)
 * lstm_proj_fwd    grid {P,B,D}: s,T,B,P,D, lengths, hp, h, hin, y, seedLo,seedHi,layer,thresh,scale
 *                  (hp [D,B,P] = m W_hr^T of this step)
 * lstm_proj_bwd    grid {P,B,D}: s,T,B,P,D, lengths, dy, dhN, dhrec, dht, dhtall, seedLo,seedHi,layer,thresh,scale
 *                  (dht [D,B,P] the total dh_t of this step, dhtall [T,B,D,P] the same by time)
 * lstm_peephole_grad grid {H,D}: T,B,H,D,G,coupled, lengths, dgall, csave, c0, dst [D,3,H] (overwritten)
 * gru_step_fwd     grid {H,B,D}: s,T,B,H,D,training, lengths, xw, hw, bih, bhh, h, hin, y, gsave,
 *                                seedLo,seedHi,layer,thresh,scale        (reset after)
 * gru_step_bwd     grid {H,B,D}: s,T,B,H,D, lengths, dy, dhN, dhrec, ddir, gsave, y, h0, dgs, dgall, dgallh,
 *                                seedLo,seedHi,layer,thresh,scale
 *                  (ddir [D,B,H]: z*dh, the direct path to h_{t-1}, in/out; dgs and dgallh hold the
 *                   recurrent-side gradients (n block times r), dgall the input-side ones)
 * gru_before_gate_fwd grid {H,B,D}: s,T,B,H,D, lengths, xw, hw, bih, bhh, hsrc, rz, rh      (reset before:
 *                  after the GEMM hw[:, r,z] = h~ W_h{r,z}^T: rz [D,B,2H] = r, z; rh [D,B,H] = r*hsrc, 0 if inactive)
 * gru_before_step_fwd grid {H,B,D}: s,T,B,H,D,training, lengths, xw, hw, bih, bhh, rz, rh, h, hin, y, gsave,
 *                                seedLo,seedHi,layer,thresh,scale
 *                  (after the GEMM hw[:, n] = rh W_hn^T: n = tanh(xw_n + b_in + hw_n + b_hn); saves r, z, n, rh)
 * gru_before_step_bwd grid {H,B,D}: s,T,B,H,D, lengths, dy, dhN, dhrec, ddir, gsave, y, h0, dgs, dgall,
 *                                seedLo,seedHi,layer,thresh,scale   (z and n blocks of dgs/dgall, ddir = z*dh)
 * gru_before_reset_bwd grid {H,B,D}: s,T,B,H,D, lengths, drh, gsave, y, h0, dgs, dgall, dhrec,
 *                                seedLo,seedHi,layer,thresh,scale
 *                  (after the GEMM drh = dn_pre W_hn: r block of dgs/dgall, dhrec = drh*r, onto which the GEMM
 *                   [dr, dz] W_h{r,z} then accumulates)
 * rnn_dh0          grid {P,B,D}: B,P,D,hasDdir, dhrec, ddir, dh0, seedLo,seedHi,layer,thresh,scale
 *                  (dh0 = dhrec*mask + ddir after the last backward step)
 * mask_state       grid {P,B,D}: B,P,D, src, dst, seedLo,seedHi,layer,thresh,scale   (dst = src*recurrent mask)
 * gather_hprev     grid {P,B,T*D}: T,B,P,D, lengths, y, h0, dst, seedLo,seedHi,layer,thresh,scale
 *                  (dst [T,B,D,P] = h~_{t-1} masked, 0 at padded t)
 * input_dropout_fwd grid {I,B,T*D}: T,B,I,D, x, dst, seedLo,seedHi,layer,thresh,scale
 *                  (dst [D,T,B,I] = x * mask(stream(layer,d,INPUT), b*I+j))
 * input_dropout_bwd grid {I,B,T}: T,B,I,D, dxd, dx, seedLo,seedHi,layer,thresh,scale   (dx = sum_d dxd*mask_d)
 * merge_fwd        grid {W,B,T}: T,B,P,D,W,mode,residual, lengths, y, in, dst, seedLo,seedHi,layer,thresh,scale
 *                  (mode = MergeMode ordinal; dst = (merge(y) + [in]) * between-layer mask of stream
 *                   (layer,0,BETWEEN_LAYERS) index (t*B+b)*W+j; 0 at padded t)
 * merge_bwd        grid {P,B,T*D}: T,B,P,D,W,mode, lengths, dout, y, dy   (dy [T,B,D,P]; 0 at padded t)
 * layer_input_bwd  grid {W,B,T}: T,B,W,residual, lengths, dx, dout, dst, seedLo,seedHi,layer,thresh,scale
 *                  (dst = (dx + [dout at t &lt; len]) * between-layer mask of layer {@code layer})
 * col_sum          grid {N}: M,N, src, dst, beta      (dst[j] = beta*dst[j] + sum_i src[i*N + j])
 * transpose        grid {inner*cols,rows}: rows,cols,inner, src,srcOff,srcLd, dst,dstOff,dstLd, beta
 *                  (dst[dstOff + (c*dstLd + r)*inner + e] = beta*dst[..] + src[srcOff + (r*srcLd + c)*inner + e];
 *                   beta 0 does not read dst; a matrix transpose with inner 1, the swap of the first two
 *                   dimensions with inner F, a copy or accumulation between buffer offsets with rows = cols = 1)
 * col_dot          grid {N}: M,N, a, b, dst, beta     (dst[j] = beta*dst[j] + sum_i a[i*N + j]*b[i*N + j])
 * ln_rows_fwd      grid {rows}: rows,H,G,D,training, v, gain, shift, xhat, rstd
 *                  (layer norm in place of each H-row r of v, block g = r%G, direction d = (r/G)%D, gain/shift
 *                   [D,G*H]; training saves xhat (same layout as v) and rstd [rows])
 * ln_rows_bwd      grid {rows}: rows,H,G,D, da, gain, xhat, rstd, dv   (dv = LN backward of da)
 * ln_step_fwd      grid {nblk,B,D}: s,T,B,H,D,G,g0,nblk,training, lengths, v, gain, shift, xhat, rstd
 *                  (blocks g0..g0+nblk-1 of v [D,B,G*H] in place; saves xhat [T,B,D,G*H], rstd [T,B,D,G] by time,
 *                   zeros at padded positions)
 * ln_step_bwd      grid {nblk,B,D}: s,T,B,H,D,G,g0,nblk, lengths, dg, gain, xhat, rstd, dvall
 *                  (dg [D,B,G*H] in place from da to dv for active sequences; dv also by time in dvall, zeros at
 *                   padded positions)
 * </pre>
 *
 * <h2>Optional single-work-group kernels</h2>
 * Launched only when {@link dev.recur.backend.DeviceBackend#supports} says so (a backend without them needs no
 * change: the schedule then uses the per-step kernels above). The grid {@code {L}} runs as
 * exactly ONE work-group of {@code L} work items that loop over every step with work-group barriers
 * ({@code kernels/common/persist.h}), so they rely on work-group size and barriers, unlike the kernels above.
 * <pre>
 * lstm_seq_fwd  grid {L}: T,B,H,D,peep,coupled,training, lengths, xw, whhT, hw, bih, bhh, peepw, c, h, hin, y,
 *                         gsave, csave, seedLo,seedHi,layer,thresh,scale
 *               (every step of lstm_step_fwd without projection, each after hw = h~ W_hh^T; whhT [D,H,GH])
 * gru_seq_fwd   grid {L}: T,B,H,D,training, lengths, xw, whhT, hw, bih, bhh, h, hin, y, gsave,
 *                         seedLo,seedHi,layer,thresh,scale          (every step of gru_step_fwd, reset after)
 * rnn_seq_fwd   grid {L}: T,B,H,D,act, lengths, xw, whhT, hw, bih, bhh, h, y   (every step of rnn_step_fwd)
 * </pre>
 * On the {@code cpu} backend these run on every thread
 * ({@link dev.recur.backend.DeviceBackend#sequenceKernelsScale}).
 *
 * <h2>Optional whole-sequence backward kernels</h2>
 * A layer's whole backward recurrence in one launch, for a backend that runs it on the whole device
 * ({@link #SEQUENCE_BWD}; the {@code cpu} backend). Each is, for s = T-1 down to 0, the per-step kernel followed by
 * the recurrent data product {@code dhrec[d] = dgs[d] W_hh[d]} ({@code whh [D,GH,H]}), exactly as the schedule's
 * per-step loop; afterwards {@code dhrec}, {@code dc} and {@code ddir} hold what that loop leaves in them
 * ({@code dgs} is scratch). No projection, no layer norm, GRU reset after.
 * <pre>
 * lstm_seq_bwd  grid {1}: T,B,H,D,peep,coupled, lengths, dy, dhN, dhrec, dcN, dc, gsave, csave, c0, peepw, whh,
 *                         dgs, dgall, seedLo,seedHi,layer,thresh,scale
 * gru_seq_bwd   grid {1}: T,B,H,D, lengths, dy, dhN, dhrec, ddir, gsave, y, h0, whh, dgs, dgall, dgallh,
 *                         seedLo,seedHi,layer,thresh,scale
 * rnn_seq_bwd   grid {1}: T,B,H,D,act, lengths, dy, dhN, dhrec, y, whh, dgs, dgall
 * </pre>
 */
public final class Kernels {
    private Kernels() {}

    public static final String RNN_STEP_FWD = "rnn_step_fwd";
    public static final String RNN_STEP_BWD = "rnn_step_bwd";
    public static final String LSTM_STEP_FWD = "lstm_step_fwd";
    public static final String LSTM_STEP_BWD = "lstm_step_bwd";
    public static final String LSTM_PROJ_FWD = "lstm_proj_fwd";
    public static final String LSTM_PROJ_BWD = "lstm_proj_bwd";
    public static final String LSTM_PEEPHOLE_GRAD = "lstm_peephole_grad";
    public static final String GRU_STEP_FWD = "gru_step_fwd";
    public static final String GRU_STEP_BWD = "gru_step_bwd";
    public static final String GRU_BEFORE_GATE_FWD = "gru_before_gate_fwd";
    public static final String GRU_BEFORE_STEP_FWD = "gru_before_step_fwd";
    public static final String GRU_BEFORE_STEP_BWD = "gru_before_step_bwd";
    public static final String GRU_BEFORE_RESET_BWD = "gru_before_reset_bwd";
    public static final String RNN_DH0 = "rnn_dh0";
    public static final String MASK_STATE = "mask_state";
    public static final String GATHER_HPREV = "gather_hprev";
    public static final String INPUT_DROPOUT_FWD = "input_dropout_fwd";
    public static final String INPUT_DROPOUT_BWD = "input_dropout_bwd";
    public static final String MERGE_FWD = "merge_fwd";
    public static final String MERGE_BWD = "merge_bwd";
    public static final String LAYER_INPUT_BWD = "layer_input_bwd";
    public static final String COL_SUM = "col_sum";
    public static final String COL_DOT = "col_dot";
    public static final String TRANSPOSE = "transpose";
    public static final String LN_ROWS_FWD = "ln_rows_fwd";
    public static final String LN_ROWS_BWD = "ln_rows_bwd";
    public static final String LN_STEP_FWD = "ln_step_fwd";
    public static final String LN_STEP_BWD = "ln_step_bwd";

    public static final String LSTM_SEQ_FWD = "lstm_seq_fwd";
    public static final String GRU_SEQ_FWD = "gru_seq_fwd";
    public static final String RNN_SEQ_FWD = "rnn_seq_fwd";

    /**
     * The optional single-work-group kernels: launched only on a backend whose
     * {@link dev.recur.backend.DeviceBackend#supports} returns true for them, as one work-group of the whole grid.
     */
    public static final java.util.List<String> SINGLE_GROUP = java.util.List.of(LSTM_SEQ_FWD, GRU_SEQ_FWD, RNN_SEQ_FWD);

    public static final String LSTM_SEQ_BWD = "lstm_seq_bwd";
    public static final String GRU_SEQ_BWD = "gru_seq_bwd";
    public static final String RNN_SEQ_BWD = "rnn_seq_bwd";

    /** The optional whole-sequence backward kernels (no OpenCL/CUDA versions: launched where {@code supports} says). */
    public static final java.util.List<String> SEQUENCE_BWD = java.util.List.of(LSTM_SEQ_BWD, GRU_SEQ_BWD, RNN_SEQ_BWD);

    public static final String LSTM_STEP_FWD8 = "lstm_step_fwd8";
    public static final String LSTM_STEP_BWD8 = "lstm_step_bwd8";
    public static final String GRU_STEP_FWD8 = "gru_step_fwd8";
    public static final String RNN_STEP_FWD8 = "rnn_step_fwd8";

    /**
     * Optional kernels: launched only where {@link dev.recur.backend.DeviceBackend#supports} says so; the schedule
     * otherwise uses the kernels of {@link #ALL}. {@code lstm_step_fwd8}, {@code lstm_step_bwd8},
     * {@code gru_step_fwd8}, {@code rnn_step_fwd8} are {@code lstm_step_fwd}, {@code lstm_step_bwd},
     * {@code gru_step_fwd}, {@code rnn_step_fwd} (same arguments) over the grid
     * {@code {ceil(H/8), B, D}}, 8 units per work item.
     */
    public static final java.util.List<String> OPTIONAL = java.util.List.of(LSTM_SEQ_FWD, GRU_SEQ_FWD, RNN_SEQ_FWD,
            LSTM_STEP_FWD8, LSTM_STEP_BWD8, GRU_STEP_FWD8, RNN_STEP_FWD8);

    /** Every kernel the schedule may launch on any backend (the optional ones are in {@link #OPTIONAL}). */
    public static final java.util.List<String> ALL = java.util.List.of(
            RNN_STEP_FWD, RNN_STEP_BWD, LSTM_STEP_FWD, LSTM_STEP_BWD, LSTM_PROJ_FWD, LSTM_PROJ_BWD,
            LSTM_PEEPHOLE_GRAD, GRU_STEP_FWD, GRU_STEP_BWD, GRU_BEFORE_GATE_FWD, GRU_BEFORE_STEP_FWD,
            GRU_BEFORE_STEP_BWD, GRU_BEFORE_RESET_BWD, RNN_DH0, MASK_STATE, GATHER_HPREV,
            INPUT_DROPOUT_FWD, INPUT_DROPOUT_BWD, MERGE_FWD, MERGE_BWD, LAYER_INPUT_BWD, COL_SUM, COL_DOT,
            LN_ROWS_FWD, LN_ROWS_BWD, LN_STEP_FWD, LN_STEP_BWD, TRANSPOSE);
}
