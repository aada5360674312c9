package dev.recur.backend.cuda;

import jcuda.nvrtc.JNvrtc;
import jcuda.nvrtc.nvrtcProgram;
import jcuda.nvrtc.nvrtcResult;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Compiles a kernel unit with NVRTC for one device, through the on-disk {@link KernelCache}. Only loaded
 * once {@link CudaProbe} has found libnvrtc.so.12.
 *
 * <p>For a device whose architecture NVRTC knows, the unit is compiled for that real architecture, giving a
 * CUBIN (loaded as is: no JIT at start-up, and no dependence on the driver accepting a newer PTX ISA, which
 * a CUDA 12.x NVRTC newer than the driver would otherwise hit) and the PTX beside it (whose entry
 * signatures check launches, and which is the fallback). A device newer than NVRTC gets PTX for the newest
 * virtual architecture NVRTC knows, which the driver JIT-compiles.
 */
final class NvrtcCompiler {
    /** What to compile for: {@code sm_<arch>} with a CUBIN, or {@code compute_<arch>} PTX only. */
    record Target(int arch, boolean cubin) {
        String label() {
            return "sm_" + arch;
        }

        String option() {
            return "--gpu-architecture=" + (cubin ? "sm_" : "compute_") + arch;
        }
    }

    /** A compiled unit: PTX always, the CUBIN when the target has one. */
    record Compiled(String ptx, byte[] cubin) {}

    private final KernelCache cache;
    private final String version;

    NvrtcCompiler(KernelCache cache) {
        this.cache = cache;
        JNvrtc.setExceptionsEnabled(false);
        int[] major = {0};
        int[] minor = {0};
        JNvrtc.nvrtcVersion(major, minor);
        this.version = "nvrtc-" + major[0] + "." + minor[0];
    }

    String version() {
        return version;
    }

    /** The target for a device of compute capability {@code deviceArch} (e.g. 86 for 8.6). */
    Target target(int deviceArch) {
        int[] archs = supportedArchs();
        if (archs.length == 0) return new Target(deviceArch, true);
        int best = -1;
        for (int a : archs) if (a <= deviceArch && a > best) best = a;
        if (best < 0) {
            throw new CudaKernelCompileException("the device's architecture sm_" + deviceArch + " is older than every one "
                    + version + " supports (oldest sm_" + archs[0] + ")", "");
        }
        return new Target(best, best == deviceArch);
    }

    /** The real architectures this NVRTC compiles for, ascending (empty if it cannot say). */
    private static int[] supportedArchs() {
        int[] n = {0};
        if (JNvrtc.nvrtcGetNumSupportedArchs(n) != nvrtcResult.NVRTC_SUCCESS || n[0] == 0) return new int[0];
        int[] archs = new int[n[0]];
        if (JNvrtc.nvrtcGetSupportedArchs(archs) != nvrtcResult.NVRTC_SUCCESS) return new int[0];
        java.util.Arrays.sort(archs);
        return archs;
    }

    /** The unit compiled for {@code target}, from the cache or freshly compiled (and then cached). */
    Compiled compile(CudaKernelSources.Unit unit, Target target) {
        String hash = hash(unit, target);
        Optional<byte[]> ptx = cache.read(unit.stem(), hash, target.label(), "ptx");
        Optional<byte[]> cubin = target.cubin() ? cache.read(unit.stem(), hash, target.label(), "cubin") : Optional.empty();
        if (ptx.isPresent() && (!target.cubin() || cubin.isPresent())) {
            return new Compiled(new String(ptx.get(), StandardCharsets.UTF_8), cubin.orElse(null));
        }
        Compiled c = nvrtc(unit, target);
        if (c.cubin() != null) cache.write(unit.stem(), hash, target.label(), "cubin", c.cubin());
        // PTX last: its presence (with the CUBIN's, for a real target) marks a complete entry.
        cache.write(unit.stem(), hash, target.label(), "ptx", c.ptx().getBytes(StandardCharsets.UTF_8));
        return c;
    }

    /** Where {@link #compile} keeps the PTX ({@code ext = "ptx"}) or CUBIN of {@code unit} for {@code target}. */
    Path cacheFile(CudaKernelSources.Unit unit, Target target, String ext) {
        return cache.file(unit.stem(), hash(unit, target), target.label(), ext);
    }

    private String hash(CudaKernelSources.Unit unit, Target target) {
        List<String> options = new ArrayList<>(CudaKernelSources.NVRTC_OPTIONS);
        options.add(target.option());
        return unit.hash(options, version, target.label());
    }

    private Compiled nvrtc(CudaKernelSources.Unit unit, Target target) {
        List<String> names = new ArrayList<>();
        List<String> texts = new ArrayList<>();
        for (Map.Entry<String, String> h : unit.headers().entrySet()) {
            names.add(h.getKey());
            texts.add(h.getValue());
        }
        List<String> options = new ArrayList<>(CudaKernelSources.NVRTC_OPTIONS);
        options.add(target.option());
        nvrtcProgram program = new nvrtcProgram();
        check(JNvrtc.nvrtcCreateProgram(program, unit.source(), unit.name(), names.size(),
                texts.toArray(String[]::new), names.toArray(String[]::new)), unit, "nvrtcCreateProgram");
        try {
            int r = JNvrtc.nvrtcCompileProgram(program, options.size(), options.toArray(String[]::new));
            if (r != nvrtcResult.NVRTC_SUCCESS) {
                throw new CudaKernelCompileException("NVRTC (" + version + ") could not compile kernels/cuda/" + unit.name()
                        + " with " + target.option() + " (" + nvrtcResult.stringFor(r) + ")", log(program));
            }
            String[] ptx = {null};
            check(JNvrtc.nvrtcGetPTX(program, ptx), unit, "nvrtcGetPTX");
            byte[] cubin = null;
            if (target.cubin()) {
                long[] size = {0};
                check(JNvrtc.nvrtcGetCUBINSize(program, size), unit, "nvrtcGetCUBINSize");
                cubin = new byte[Math.toIntExact(size[0])];
                check(JNvrtc.nvrtcGetCUBIN(program, cubin), unit, "nvrtcGetCUBIN");
            }
            return new Compiled(ptx[0], cubin);
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
}
