package dev.recur.backend.cuda;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Compiles a kernel unit with NVRTC for one device, through the on-disk {@link KernelCache}, with NVRTC from
 * whichever {@link CudaApi} binding the backend uses (NVRTC 12 or 13).
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

    /**
     * A compiled unit: PTX always, the CUBIN when the target has one, and NVRTC's log (empty when the unit came
     * from the cache or NVRTC had nothing to say; a warning shows here).
     */
    record Compiled(String ptx, byte[] cubin, String log) {}

    private final CudaApi api;
    private final KernelCache cache;
    private final String version;

    /** Throws {@link IllegalStateException} naming the files tried when the binding has no NVRTC. */
    NvrtcCompiler(CudaApi api, KernelCache cache) {
        String missing = api.load(CudaApi.Part.NVRTC);
        if (missing != null) throw new IllegalStateException(missing);
        this.api = api;
        this.cache = cache;
        int[] v = api.nvrtcVersion();
        this.version = "nvrtc-" + v[0] + "." + v[1];
    }

    String version() {
        return version;
    }

    /** The target for a device of compute capability {@code deviceArch} (e.g. 86 for 8.6). */
    Target target(int deviceArch) {
        int[] archs = api.nvrtcArchs();
        if (archs.length == 0) return new Target(deviceArch, true);
        int best = -1;
        for (int a : archs) if (a <= deviceArch && a > best) best = a;
        if (best < 0) {
            throw new CudaKernelCompileException("the device's architecture sm_" + deviceArch + " is older than every one "
                    + version + " supports (oldest sm_" + archs[0] + ")", "");
        }
        return new Target(best, best == deviceArch);
    }

    /** The unit compiled for {@code target}, from the cache or freshly compiled (and then cached). */
    Compiled compile(CudaKernelSources.Unit unit, Target target) {
        String hash = hash(unit, target);
        Optional<byte[]> ptx = cache.read(unit.stem(), hash, target.label(), "ptx");
        Optional<byte[]> cubin = target.cubin() ? cache.read(unit.stem(), hash, target.label(), "cubin") : Optional.empty();
        if (ptx.isPresent() && (!target.cubin() || cubin.isPresent())) {
            return new Compiled(new String(ptx.get(), StandardCharsets.UTF_8), cubin.orElse(null), "");
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
        List<String> options = new ArrayList<>(CudaKernelSources.NVRTC_OPTIONS);
        options.add(target.option());
        CudaApi.NvrtcOutput out;
        try {
            out = api.nvrtcCompile(unit.name(), unit.source(), unit.headers(), options, target.cubin());
        } catch (CudaException e) {
            throw new CudaKernelCompileException(e.getMessage() + " for kernels/cuda/" + unit.name() + " (" + version + ")", "");
        }
        if (out.status() != 0) {
            throw new CudaKernelCompileException("NVRTC (" + version + ") could not compile kernels/cuda/" + unit.name()
                    + " with " + target.option() + " (" + out.statusName() + ")", out.log());
        }
        return new Compiled(out.ptx(), out.cubin(), out.log().strip());
    }
}
