package dev.recur.backend.cuda;

import dev.recur.backend.BackendProvider.Availability;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;
import jcuda.nvrtc.JNvrtc;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Finds out once per JVM whether CUDA can run here, and if not, exactly why. A JCuda class whose native
 * library fails to load throws {@link UnsatisfiedLinkError} on first use and {@link NoClassDefFoundError}
 * ever after, so the answer is computed once and kept; nothing here throws.
 */
final class CudaProbe {
    /** What the probe found: a device to open, or the reasons why not. */
    record Result(boolean available, String detail, int deviceCount, int major, int minor, String deviceName,
                  long totalBytes, int driverVersion, int nvrtcMajor, int nvrtcMinor) {
        Availability availability() {
            return available ? Availability.yes(detail) : Availability.no(detail);
        }
    }

    private static final Pattern MISSING_SO = Pattern.compile("(lib[\\w.+-]+?\\.so(?:\\.\\d+)*): cannot open shared object file");

    /** CUDA_ERROR_INSUFFICIENT_DRIVER, which JCuda 12.0's CUresult does not name. */
    static final int INSUFFICIENT_DRIVER = 35;

    private static Result cached;
    /** Per JCuda class: empty when it loaded, else why not. */
    private static final Map<String, Optional<String>> LOADED = new HashMap<>();

    private CudaProbe() {}

    static synchronized Result result() {
        if (cached == null) cached = run();
        return cached;
    }

    private static Result run() {
        List<String> missing = new ArrayList<>();
        // Each library is tried even when an earlier one is missing, so one message names everything to install.
        String driver = loadClass("jcuda.driver.JCudaDriver", "libcuda.so.1", "the NVIDIA driver");
        String cublas = loadClass("jcuda.jcublas.JCublas2", "libcublas.so.12", "cuBLAS from a CUDA 12 toolkit");
        String nvrtc = loadClass("jcuda.nvrtc.JNvrtc", "libnvrtc.so.12", "NVRTC from a CUDA 12 toolkit");
        if (driver != null) missing.add(driver);
        if (cublas != null) missing.add(cublas);
        if (nvrtc != null) missing.add(nvrtc);
        if (!missing.isEmpty()) return unavailable(String.join("; ", missing));
        try {
            return probeDevice();
        } catch (LinkageError e) {
            // A JCuda jar and a native library of different versions: name the symbol rather than fail later.
            return unavailable("JCuda native library mismatch: " + firstLine(e));
        } catch (RuntimeException e) {
            return unavailable(e.getMessage());
        }
    }

    private static Result probeDevice() {
        JCudaDriver.setExceptionsEnabled(false);
        int r = JCudaDriver.cuInit(0);
        if (r == CUresult.CUDA_ERROR_NO_DEVICE) return unavailable("no CUDA device (cuInit: CUDA_ERROR_NO_DEVICE)");
        if (r == INSUFFICIENT_DRIVER) {
            return unavailable("the NVIDIA driver is too old for CUDA 12 (cuInit: CUDA_ERROR_INSUFFICIENT_DRIVER)");
        }
        if (r != CUresult.CUDA_SUCCESS) return unavailable("cuInit failed: " + CUresult.stringFor(r));
        int[] count = {0};
        r = JCudaDriver.cuDeviceGetCount(count);
        if (r != CUresult.CUDA_SUCCESS) return unavailable("cuDeviceGetCount failed: " + CUresult.stringFor(r));
        if (count[0] == 0) return unavailable("no CUDA device");
        CUdevice dev = new CUdevice();
        check(JCudaDriver.cuDeviceGet(dev, 0), "cuDeviceGet");
        int[] major = {0};
        int[] minor = {0};
        check(JCudaDriver.cuDeviceGetAttribute(major, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev), "cuDeviceGetAttribute");
        check(JCudaDriver.cuDeviceGetAttribute(minor, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev), "cuDeviceGetAttribute");
        byte[] name = new byte[256];
        check(JCudaDriver.cuDeviceGetName(name, name.length, dev), "cuDeviceGetName");
        String devName = cString(name);
        long[] total = {0};
        check(JCudaDriver.cuDeviceTotalMem(total, dev), "cuDeviceTotalMem");
        int[] driverVersion = {0};
        check(JCudaDriver.cuDriverGetVersion(driverVersion), "cuDriverGetVersion");
        int[] nvMajor = {0};
        int[] nvMinor = {0};
        JNvrtc.setExceptionsEnabled(false);
        JNvrtc.nvrtcVersion(nvMajor, nvMinor);
        String detail = String.format(Locale.ROOT, "%s (sm_%d%d, %.1f GiB)%s, driver CUDA %d.%d, NVRTC %d.%d",
                devName, major[0], minor[0], total[0] / (double) (1L << 30),
                count[0] > 1 ? " and " + (count[0] - 1) + " more (device 0 is used)" : "",
                driverVersion[0] / 1000, driverVersion[0] % 1000 / 10, nvMajor[0], nvMinor[0]);
        return new Result(true, detail, count[0], major[0], minor[0], devName, total[0], driverVersion[0], nvMajor[0], nvMinor[0]);
    }

    /**
     * Loads and initialises a JCuda class; returns null when it loads, else the reason naming the missing
     * library. Remembered per class: only the first attempt sees the loader's message (later ones get a bare
     * NoClassDefFoundError), so every caller in this JVM must go through here to get the precise reason.
     */
    static synchronized String loadClass(String className, String library, String what) {
        return LOADED.computeIfAbsent(className, c -> Optional.ofNullable(tryLoad(c, library, what))).orElse(null);
    }

    private static String tryLoad(String className, String library, String what) {
        try {
            Class.forName(className, true, CudaProbe.class.getClassLoader());
            return null;
        } catch (ClassNotFoundException e) {
            return className + " is not on the class path (the JCuda jars are missing)";
        } catch (LinkageError e) {
            return missingLibrary(e, library, what);
        } catch (RuntimeException e) {
            // JCuda extracts its JNI library to java.io.tmpdir first; an unwritable folder surfaces here.
            return library + " could not be loaded (" + what + "): " + firstLine(e);
        }
    }

    /**
     * The reason a native library did not load. The dynamic loader names the first library it could not
     * find; JCuda hides it in the message of a nested error, and on a second attempt only says that the
     * class could not be initialised, so the expected library is named in that case.
     */
    static String missingLibrary(Throwable e, String expected, String what) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            String m = String.valueOf(t.getMessage());
            Matcher matcher = MISSING_SO.matcher(m);
            if (matcher.find()) return matcher.group(1) + " not found (" + what + ")";
        }
        if (e instanceof NoClassDefFoundError) return expected + " not loadable (" + what + "): " + firstLine(e);
        return expected + " could not be loaded (" + what + "): " + firstLine(e);
    }

    private static Result unavailable(String reason) {
        return new Result(false, reason, 0, 0, 0, "", 0, 0, 0, 0);
    }

    private static void check(int r, String call) {
        if (r != CUresult.CUDA_SUCCESS) throw new IllegalStateException(call + " failed: " + CUresult.stringFor(r));
    }

    private static String firstLine(Throwable e) {
        String m = String.valueOf(e.getMessage());
        int nl = m.indexOf('\n');
        return e.getClass().getSimpleName() + ": " + (nl < 0 ? m : m.substring(0, nl));
    }

    static String cString(byte[] bytes) {
        int n = 0;
        while (n < bytes.length && bytes[n] != 0) n++;
        return new String(bytes, 0, n, java.nio.charset.StandardCharsets.UTF_8);
    }
}
