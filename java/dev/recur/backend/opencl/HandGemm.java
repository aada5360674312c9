package dev.recur.backend.opencl;

import org.jocl.Pointer;
import org.jocl.Sizeof;
import org.jocl.cl_command_queue;
import org.jocl.cl_kernel;
import org.jocl.cl_mem;

import static org.jocl.CL.CL_MEM_READ_WRITE;
import static org.jocl.CL.clCreateBuffer;
import static org.jocl.CL.clCreateKernel;
import static org.jocl.CL.clReleaseMemObject;
import static org.jocl.CL.clEnqueueNDRangeKernel;
import static org.jocl.CL.clReleaseKernel;
import static org.jocl.CL.clSetKernelArg;

/**
 * The register-blocked kernels of {@code kernels/common/gemm.h}: a 6 x 16 block of C per work item in float8
 * vectors with B staged through local memory when B is not transposed (the schedule's every GEMM), a scalar
 * 8 x 4 block otherwise. A big transposed A (the weight gradients) is first packed by 8 x 8 tiles.
 */
final class HandGemm implements ClGemm {
    private static final int TM = 8, TN = 4;
    private final long localX;
    private final cl_kernel[] kernels = new cl_kernel[7];

    /** Below this many multiply-adds a transposed A is read in place rather than packed first. */
    private static final long PACK_MIN_WORK = 1L << 22;
    private final OpenClDevice device;
    /** Scratch for packing a transposed A; the backend's own, not counted in memoryInUse. */
    private cl_mem packed;
    private long packedFloats;

    HandGemm(OpenClDevice device) {
        this.device = device;
        this.localX = device.localX;
        String[] names = {"gemm_nn", "gemm_nt", "gemm_tn", "gemm_tt", "gemm_v4_nn", "gemm_v4_tn", "gemm_transpose"};
        try {
            for (int i = 0; i < names.length; i++) kernels[i] = clCreateKernel(device.program(), names[i], null);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    @Override
    public String name() {
        return "hand-written register-blocked (6x16 float8 blocks; scalar 8x4 when B is transposed)";
    }

    @Override
    public void gemm(cl_command_queue queue, boolean transA, boolean transB, int m, int n, int k, float alpha,
                     cl_mem a, long offA, int lda, long strideA, cl_mem b, long offB, int ldb, long strideB,
                     float beta, cl_mem c, long offC, int ldc, long strideC, int batch) {
        if (transA && !transB && (long) m * n * k >= PACK_MIN_WORK) {
            // Big A^T B (the weight gradients): pack A^T row-major once, then the NN kernel. Read in place, A^T's column
            // of 6 values sits on its own page per p at lda = 1024, and the TN kernel ran at half the NN speed.
            long need = (long) batch * m * k;
            cl_mem at = scratch(need);
            int tr = 6;
            int j = 0;
            setInt(tr, j++, k);
            setInt(tr, j++, m);
            setMem(tr, j++, a);
            setInt(tr, j++, Math.toIntExact(offA));
            setInt(tr, j++, lda);
            setInt(tr, j++, Math.toIntExact(strideA));
            setMem(tr, j, at);
            long tx = (m + 7) / 8;
            long[] tg = {(tx + localX - 1) / localX * localX, (k + 7) / 8, batch};
            clEnqueueNDRangeKernel(queue, kernels[tr], 3, null, tg, new long[] {localX, 1, 1}, 0, null, null);
            a = at;
            offA = 0;
            lda = k;
            strideA = (long) m * k;
            transA = false;
        }
        // B not transposed (every GEMM of the schedule): 6x16 float8 blocks; else scalar 8x4 blocks.
        boolean v4 = !transB;
        int kr = v4 ? 4 + (transA ? 1 : 0) : (transA ? 2 : 0) + (transB ? 1 : 0);
        int i = 0;
        setInt(kr, i++, m);
        setInt(kr, i++, n);
        setInt(kr, i++, k);
        setFloat(kr, i++, alpha);
        setMem(kr, i++, a);
        setInt(kr, i++, Math.toIntExact(offA));
        setInt(kr, i++, lda);
        setInt(kr, i++, Math.toIntExact(strideA));
        setMem(kr, i++, b);
        setInt(kr, i++, Math.toIntExact(offB));
        setInt(kr, i++, ldb);
        setInt(kr, i++, Math.toIntExact(strideB));
        setFloat(kr, i++, beta);
        setMem(kr, i++, c);
        setInt(kr, i++, Math.toIntExact(offC));
        setInt(kr, i++, ldc);
        setInt(kr, i, Math.toIntExact(strideC));
        // Vector kernels: dimension 0 over blocks of 6 rows (a work-group shares one panel of B), 1 over 16 columns.
        long gx = v4 ? rowItems(m, n, batch) : (n + TN - 1) / TN;
        long[] global = {(gx + localX - 1) / localX * localX,
                v4 ? (n + 15) / 16 : (m + TM - 1) / TM, batch};
        long[] local = {localX, 1, 1};
        clEnqueueNDRangeKernel(queue, kernels[kr], 3, null, global, local, 0, null, null);
    }

    /** Most row blocks one work item of the vector kernel takes: a group's staged B panel then serves 16 * 4. */
    private static final int MAX_ROW_BLOCKS = 4;

    /**
     * Work items along dimension 0 of the vector kernels, which give each one ceil(blocks / items) blocks of 6 rows
     * when the B panel is staged (m above one work-group's rows): up to {@link #MAX_ROW_BLOCKS}, fewer while that
     * would leave under 8 work-groups for the device's threads.
     */
    private long rowItems(int m, int n, int batch) {
        long blocks = (m + 5) / 6;
        if (m <= 6 * localX) return blocks;
        long panels = (long) ((n + 15) / 16) * batch;
        int rb = MAX_ROW_BLOCKS;
        while (rb > 1 && (blocks + localX * rb - 1) / (localX * rb) * panels < 8) rb /= 2;
        return (blocks + rb - 1) / rb;
    }

    private cl_mem scratch(long floats) {
        if (packed == null || packedFloats < floats) {
            if (packed != null) clReleaseMemObject(packed);
            packed = null;
            packed = clCreateBuffer(device.context, CL_MEM_READ_WRITE, floats * 4, null, null);
            packedFloats = floats;
        }
        return packed;
    }

    /*
     * Argument values last set on each kernel: OpenCL keeps them on the kernel object, so a call sets only those
     * that changed (in the time loop usually none or an offset). Each set is a JNI call with an allocation, and
     * on a 2-core host the enqueueing thread competes with the device's worker threads for the same cores.
     */
    private final Object[][] last = new Object[7][17];

    private void setInt(int k, int i, int v) {
        if (last[k][i] instanceof Integer x && x == v) return;
        last[k][i] = null;
        clSetKernelArg(kernels[k], i, Sizeof.cl_int, Pointer.to(new int[] {v}));
        last[k][i] = v;
    }

    private void setFloat(int k, int i, float v) {
        if (last[k][i] instanceof Float x && Float.floatToRawIntBits(x) == Float.floatToRawIntBits(v)) return;
        last[k][i] = null;
        clSetKernelArg(kernels[k], i, Sizeof.cl_float, Pointer.to(new float[] {v}));
        last[k][i] = v;
    }

    private void setMem(int k, int i, cl_mem m) {
        // By identity: a released cl_mem object is never used again, and a new buffer is a new object.
        if (last[k][i] == m) return;
        last[k][i] = null;
        clSetKernelArg(kernels[k], i, Sizeof.cl_mem, Pointer.to(m));
        last[k][i] = m;
    }

    @Override
    public void close() {
        if (packed != null) clReleaseMemObject(packed);
        packed = null;
        for (int i = 0; i < kernels.length; i++) {
            if (kernels[i] != null) clReleaseKernel(kernels[i]);
            kernels[i] = null;
        }
    }
}
