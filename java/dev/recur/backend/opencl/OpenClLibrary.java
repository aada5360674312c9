package dev.recur.backend.opencl;

import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.util.List;
import java.util.Locale;
import java.util.function.Predicate;

/**
 * Whether JOCL will find the OpenCL ICD loader, asked before any JOCL class is touched. JOCL's native side
 * prints "Could not load ..." to the process's stderr for every name it tries and fails, and a JOCL class that
 * failed once stays unusable for the life of the JVM; asking the dynamic loader ourselves, for the same names
 * in the same order, keeps both out of an application that merely probes for OpenCL, and lets the reason name
 * the missing file and where it comes from.
 */
final class OpenClLibrary {
    private OpenClLibrary() {}

    /**
     * The names JOCL 2.0.6 passes to {@code dlopen} on Linux, in its order ({@code org.jocl.LibInitializer}). The
     * versioned name comes first: it is what the ICD loader's runtime package and every GPU driver install;
     * the unversioned link exists only with the development package.
     */
    static final List<String> LINUX_NAMES = List.of("libOpenCL.so.1", "libOpenCL.so");

    /** Null when JOCL will find a loader here (or this is not Linux, where JOCL looks elsewhere), else why not. */
    static String missing() {
        if (!System.getProperty("os.name", "").toLowerCase(Locale.ROOT).startsWith("linux")) return null;
        return missing(OpenClLibrary::loadable);
    }

    /** {@link #missing()} over a given test of whether a library name loads. */
    static String missing(Predicate<String> loads) {
        for (String name : LINUX_NAMES) if (loads.test(name)) return null;
        return LINUX_NAMES.getFirst() + " not found (the OpenCL ICD loader; Debian/Ubuntu: apt-get install "
                + "ocl-icd-libopencl1, with an OpenCL driver such as pocl-opencl-icd or the GPU vendor's)";
    }

    /** Whether {@code dlopen} finds the library by this name, searched as JOCL's own call searches it. */
    static boolean loadable(String name) {
        try (Arena arena = Arena.ofConfined()) {
            SymbolLookup.libraryLookup(name, arena);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        } catch (IllegalCallerException e) {
            // Native access denied to this code (--illegal-native-access=deny): JOCL's own load decides.
            return true;
        }
    }
}
