package dev.recur.backend.opencl;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledOnOs;
import org.junit.jupiter.api.condition.OS;

import java.lang.reflect.Method;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Finding the OpenCL ICD loader the way JOCL will, before JOCL is touched. */
class OpenClLibraryTest {
    @Test
    void eitherNameJoclTriesIsEnough() {
        assertNull(OpenClLibrary.missing(n -> n.equals("libOpenCL.so.1")), "the runtime package's versioned name alone");
        assertNull(OpenClLibrary.missing(n -> n.equals("libOpenCL.so")), "the -dev package's link alone");
    }

    @Test
    void noLoaderNamesTheFileAndThePackage() {
        String why = OpenClLibrary.missing(n -> false);
        assertNotNull(why);
        assertTrue(why.startsWith("libOpenCL.so.1 not found"), why);
        assertTrue(why.contains("ocl-icd-libopencl1"), why);
    }

    @Test
    @EnabledOnOs(OS.LINUX)
    void triesWhatJoclTriesInJoclsOrder() throws Exception {
        // JOCL's list is private; read it so that a JOCL upgrade that changes it fails here, not on a user's machine.
        Class<?> init = Class.forName("org.jocl.LibInitializer");
        Method m = init.getDeclaredMethod("createImplementationNameCandidates");
        m.setAccessible(true);
        List<String> jocl = Arrays.asList((String[]) m.invoke(null));
        assertEquals(jocl, OpenClLibrary.LINUX_NAMES);
    }

    @Test
    @EnabledOnOs(OS.LINUX)
    void aNameThatIsNotThereIsNotLoadable() {
        assertFalse(OpenClLibrary.loadable("libOpenCL-recur-test-absent.so.9"));
        assertTrue(OpenClLibrary.loadable("libc.so.6"));
    }

    @Test
    void theProbeAgreesWithTheLoader() {
        String missing = OpenClLibrary.missing();
        if (missing != null) {
            assertFalse(OpenClBackend.PROVIDER.probe().available());
            assertEquals(missing, OpenClBackend.PROVIDER.probe().detail());
        }
    }
}
