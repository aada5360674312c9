package dev.recur.backend.cuda;

import jcuda.nvrtc.JNvrtc;
import jcuda.nvrtc.nvrtcProgram;
import jcuda.nvrtc.nvrtcResult;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Compiles a kernel unit to PTX with NVRTC for one virtual architecture, through the on-disk
 * {@link PtxCache}. Only loaded once {@link CudaProbe} has found libnvrtc.so.12.
 */
final class NvrtcCompiler {
    private final PtxCache cache;
    private final String version;

    NvrtcCompiler(PtxCache cache) {
        this.cache = cache;
        JNvrtc.setExceptionsEnabled(false);
        int[] major = {0};
        int[] minor = {0};
        JNvrtc.nvrtcVersion(major, minor);
        this.version = "nvrtc-" + major[0] + "." + minor[0];
    }

    /**
     * The highest architecture NVRTC can target that the device runs: the device's own when NVRTC knows
     * it, else the newest older one (the driver JIT-compiles older PTX for a newer device).
     */
    int targetArch(int deviceArch) {
        int[] n = {0};
        if (JNvrtc.nvrtcGetNumSupportedArchs(n) != nvrtcResult.NVRTC_SUCCESS || n[0] == 0) return deviceArch;
        int[] archs = new int[n[0]];
        if (JNvrtc.nvrtcGetSupportedArchs(archs) != nvrtcResult.NVRTC_SUCCESS) return deviceArch;
        int best = -1;
        for (int a : archs) if (a <= deviceArch && a > best) best = a;
        if (best < 0) {
            throw new CudaKernelCompileException("the device's architecture sm_" + deviceArch + " is older than every one "
                    + version + " supports (oldest sm_" + archs[0] + ")", "");
        }
        return best;
    }

    /** PTX for {@code unit} at {@code compute_<arch>}, from the cache or freshly compiled (and then cached). */
    String ptx(CudaKernelSources.Unit unit, int arch) {
        String archName = "sm_" + arch;
        String hash = unit.hash(CudaKernelSources.NVRTC_OPTIONS, version, archName);
        return cache.read(unit.stem(), hash, archName).orElseGet(() -> {
            String ptx = compile(unit, arch);
            cache.write(unit.stem(), hash, archName, ptx);
            return ptx;
        });
    }

    /** Where {@link #ptx} keeps the PTX of {@code unit} for {@code arch}. */
    java.nio.file.Path cacheFile(CudaKernelSources.Unit unit, int arch) {
        String archName = "sm_" + arch;
        return cache.file(unit.stem(), unit.hash(CudaKernelSources.NVRTC_OPTIONS, version, archName), archName);
    }

    private String compile(CudaKernelSources.Unit unit, int arch) {
        List<String> names = new ArrayList<>();
        List<String> texts = new ArrayList<>();
        for (Map.Entry<String, String> h : unit.headers().entrySet()) {
            names.add(h.getKey());
            texts.add(h.getValue());
        }
        List<String> options = new ArrayList<>(CudaKernelSources.NVRTC_OPTIONS);
        options.add("--gpu-architecture=compute_" + arch);
        nvrtcProgram program = new nvrtcProgram();
        check(JNvrtc.nvrtcCreateProgram(program, unit.source(), unit.name(), names.size(),
                texts.toArray(String[]::new), names.toArray(String[]::new)), unit, "nvrtcCreateProgram");
        try {
            int r = JNvrtc.nvrtcCompileProgram(program, options.size(), options.toArray(String[]::new));
            String log = log(program);
            if (r != nvrtcResult.NVRTC_SUCCESS) {
                throw new CudaKernelCompileException("NVRTC (" + version + ") could not compile kernels/cuda/" + unit.name()
                        + " for compute_" + arch + " (" + nvrtcResult.stringFor(r) + ")", log);
            }
            String[] ptx = {null};
            check(JNvrtc.nvrtcGetPTX(program, ptx), unit, "nvrtcGetPTX");
            return ptx[0];
        } finally {
            JNvrtc.nvrtcDestroyProgram(program);
        }
    }

    private static String log(nvrtcProgram program) {
        String[] log = {""};
        if (JNvrtc.nvrtcGetProgramLog(program, log) != nvrtcResult.NVRTC_SUCCESS || log[0] == null) return "";
        return log[0];
    }

    private void check(int r, CudaKernelSources.Unit unit, String call) {
        if (r != nvrtcResult.NVRTC_SUCCESS) {
            throw new CudaKernelCompileException(call + " failed for kernels/cuda/" + unit.name() + " (" + version + "): "
                    + nvrtcResult.stringFor(r), "");
        }
    }

    String version() {
        return version;
    }
}
