package dev.recur.backend.opencl;

import dev.recur.backend.BackendProvider.Availability;
import org.jocl.CL;
import org.jocl.CLException;
import org.jocl.Pointer;
import org.jocl.Sizeof;
import org.jocl.cl_context;
import org.jocl.cl_context_properties;
import org.jocl.cl_device_id;
import org.jocl.cl_platform_id;
import org.jocl.cl_program;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

import static org.jocl.CL.*;

/**
 * The process-wide OpenCL context on the first device of the first platform that has one, with the
 * kernel program built once and shared by every {@link OpenClBackend} (each backend has its own queue and
 * kernel objects). Keeping one context also keeps CLBlast's compiled kernels, which it caches per context.
 */
final class OpenClDevice {
    /** The kernel files compiled into the one program. */
    static final List<String> SOURCES = List.of("opencl/rnn_step.cl", "opencl/lstm_step.cl", "opencl/gru_step.cl",
            "opencl/layer.cl", "opencl/layer_norm.cl", "opencl/gemm.cl", "opencl/attention.cl", "opencl/persist.cl", "opencl/step8.cl",
            "opencl/transpose.cl", "opencl/optim.cl", "opencl/xent.cl", "opencl/embedding.cl", "opencl/decode.cl", "opencl/beam.cl",
            "opencl/pointwise.cl", "opencl/pool.cl", "opencl/loss.cl", "opencl/sample.cl", "opencl/feed.cl");
    static final String BUILD_OPTIONS = "-cl-kernel-arg-info";

    private static OpenClDevice shared;
    private static Availability probed;

    final cl_platform_id platform;
    final cl_device_id device;
    final cl_context context;
    final String platformName, deviceName;
    final long globalMemBytes, maxAllocBytes;
    /**
     * Work-group width in dimension 0 of every launch. Fixed per device because PoCL compiles a kernel once per
     * work-group size (letting the runtime choose per grid recompiles for every new shape): 16 on a CPU (two
     * 8-lane vectors), 64 elsewhere (whole warps / wavefronts), never above the device's limit.
     */
    final long localX;
    /** The largest work-group (1-D) this device runs: bounds the single-work-group kernels. */
    final long maxWorkGroup;
    /** Bytes allocated through every backend on this context. */
    final AtomicLong inUse = new AtomicLong();
    private cl_program program;
    /** Programs built on this context (tests check the kernel program is built once). */
    final AtomicLong builds = new AtomicLong();

    /** Whether this object made {@link #context} (the shared default) or was given it by a caller. */
    final boolean ownsContext;

    private OpenClDevice(cl_platform_id platform, cl_device_id device) {
        this(platform, device, createContext(platform, device), true);
    }

    private static cl_context createContext(cl_platform_id platform, cl_device_id device) {
        cl_context_properties props = new cl_context_properties();
        props.addProperty(CL_CONTEXT_PLATFORM, platform);
        return clCreateContext(props, 1, new cl_device_id[] {device}, null, null, null);
    }

    private OpenClDevice(cl_platform_id platform, cl_device_id device, cl_context context, boolean ownsContext) {
        this.platform = platform;
        this.device = device;
        this.context = context;
        this.ownsContext = ownsContext;
        this.platformName = platformString(platform, CL_PLATFORM_NAME);
        this.deviceName = deviceString(device, CL_DEVICE_NAME);
        this.globalMemBytes = deviceLong(device, CL_DEVICE_GLOBAL_MEM_SIZE);
        this.maxAllocBytes = deviceLong(device, CL_DEVICE_MAX_MEM_ALLOC_SIZE);
        long type = deviceLong(device, CL_DEVICE_TYPE);
        long maxWg = deviceSize(device, CL_DEVICE_MAX_WORK_GROUP_SIZE);
        long[] maxItems = new long[3];
        clGetDeviceInfo(device, CL_DEVICE_MAX_WORK_ITEM_SIZES, 3L * Sizeof.size_t, Pointer.to(maxItems), null);
        this.maxWorkGroup = Math.min(maxWg, maxItems[0]);
        this.localX = Math.max(1, Math.min((type & CL_DEVICE_TYPE_CPU) != 0 ? 16 : 64, Math.min(maxWg, maxItems[0])));
    }

    /** Why OpenCL is or is not usable here; never throws. */
    static synchronized Availability probe() {
        if (probed != null) return probed;
        String missing = OpenClLibrary.missing();
        if (missing != null) return probed = Availability.no(missing);
        try {
            OpenClDevice d = get();
            probed = Availability.yes(d.deviceName + " on " + d.platformName + ", " + (d.globalMemBytes >> 20)
                    + " MiB global memory");
        } catch (Throwable t) {
            probed = Availability.no(reason(t));
        }
        return probed;
    }

    private static String reason(Throwable t) {
        if (t instanceof UnsatisfiedLinkError || t instanceof NoClassDefFoundError) {
            // The ICD loader was found (OpenClLibrary), so what failed is JOCL's own native library or its
            // initialisation of the loader: say so with JOCL's first line.
            String m = String.valueOf(t.getMessage());
            int nl = m.indexOf('\n');
            return "JOCL could not initialise OpenCL: " + (nl < 0 ? m : m.substring(0, nl)).strip();
        }
        return t.getMessage() == null ? t.toString() : t.getMessage();
    }

    /** The shared device, created on first use; throws with the reason when OpenCL is unusable. */
    static synchronized OpenClDevice get() {
        if (shared != null) return shared;
        String missing = OpenClLibrary.missing();
        if (missing != null) throw new IllegalStateException(missing);
        CL.setExceptionsEnabled(true);
        int[] n = new int[1];
        try {
            clGetPlatformIDs(0, null, n);
        } catch (CLException e) {
            if (e.getStatus() == CL_PLATFORM_NOT_FOUND_KHR) throw new IllegalStateException("no OpenCL platform: "
                    + "the ICD loader found no installed platform (install e.g. pocl-opencl-icd)");
            throw e;
        }
        if (n[0] == 0) {
            throw new IllegalStateException("no OpenCL platform: the ICD loader found no installed platform "
                    + "(install e.g. pocl-opencl-icd)");
        }
        cl_platform_id[] platforms = new cl_platform_id[n[0]];
        clGetPlatformIDs(n[0], platforms, null);
        List<String> names = new ArrayList<>();
        for (cl_platform_id p : platforms) {
            names.add(platformString(p, CL_PLATFORM_NAME));
            int[] nd = new int[1];
            try {
                clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 0, null, nd);
            } catch (CLException e) {
                continue;
            }
            if (nd[0] == 0) continue;
            cl_device_id[] devs = new cl_device_id[nd[0]];
            clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, nd[0], devs, null);
            shared = new OpenClDevice(p, devs[0]);
            return shared;
        }
        throw new IllegalStateException("no OpenCL device on the installed platform(s) " + names);
    }

    /**
     * A device on a context the caller made (and keeps ownership of): its own kernel program, built here and
     * released by {@link #releaseProgram()} when the one backend using it closes.
     */
    static OpenClDevice onCallerContext(cl_context context, cl_device_id device) {
        String missing = OpenClLibrary.missing();
        if (missing != null) throw new IllegalStateException(missing);
        CL.setExceptionsEnabled(true);
        cl_platform_id[] platform = new cl_platform_id[1];
        clGetDeviceInfo(device, CL_DEVICE_PLATFORM, Sizeof.cl_platform_id, Pointer.to(platform), null);
        return new OpenClDevice(platform[0], device, context, false);
    }

    /** Releases the kernel program of a device on a caller's context (the shared one keeps its program). */
    synchronized void releaseProgram() {
        if (ownsContext || program == null) return;
        clReleaseProgram(program);
        program = null;
    }

    /** The kernel program, built on first use and kept for the life of the context. */
    synchronized cl_program program() {
        if (program != null) return program;
        String[] sources = new String[SOURCES.size()];
        for (int i = 0; i < sources.length; i++) sources[i] = KernelSources.load(SOURCES.get(i));
        program = build(sources, SOURCES.toString());
        return program;
    }

    /** Builds a program, throwing {@link KernelBuildException} with the full log on failure. */
    cl_program build(String[] sources, String what) {
        builds.incrementAndGet();
        cl_program p = clCreateProgramWithSource(context, sources.length, sources, null, null);
        try {
            clBuildProgram(p, 1, new cl_device_id[] {device}, BUILD_OPTIONS, null, null);
        } catch (CLException e) {
            String log = buildLog(p);
            clReleaseProgram(p);
            throw new KernelBuildException("OpenCL: building " + what + " for " + deviceName + " failed ("
                    + e.getMessage() + ")", log, e);
        }
        return p;
    }

    private String buildLog(cl_program p) {
        try {
            long[] size = new long[1];
            clGetProgramBuildInfo(p, device, CL_PROGRAM_BUILD_LOG, 0, null, size);
            byte[] buf = new byte[(int) size[0]];
            clGetProgramBuildInfo(p, device, CL_PROGRAM_BUILD_LOG, buf.length, Pointer.to(buf), null);
            return new String(buf, StandardCharsets.UTF_8).replace("\0", "").strip();
        } catch (CLException e) {
            return "(build log unavailable: " + e.getMessage() + ")";
        }
    }

    static String platformString(cl_platform_id p, int param) {
        long[] size = new long[1];
        clGetPlatformInfo(p, param, 0, null, size);
        byte[] buf = new byte[(int) size[0]];
        clGetPlatformInfo(p, param, buf.length, Pointer.to(buf), null);
        return new String(buf, StandardCharsets.UTF_8).replace("\0", "").strip();
    }

    static String deviceString(cl_device_id d, int param) {
        long[] size = new long[1];
        clGetDeviceInfo(d, param, 0, null, size);
        byte[] buf = new byte[(int) size[0]];
        clGetDeviceInfo(d, param, buf.length, Pointer.to(buf), null);
        return new String(buf, StandardCharsets.UTF_8).replace("\0", "").strip();
    }

    static long deviceSize(cl_device_id d, int param) {
        long[] v = new long[1];
        clGetDeviceInfo(d, param, Sizeof.size_t, Pointer.to(v), null);
        return v[0];
    }

    static long deviceLong(cl_device_id d, int param) {
        long[] v = new long[1];
        clGetDeviceInfo(d, param, Sizeof.cl_ulong, Pointer.to(v), null);
        return v[0];
    }
}
