package dev.recur.embed;

import dev.recur.backend.Backend;
import dev.recur.backend.BackendProvider;
import dev.recur.backend.Backends;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Run in a JVM without {@code --add-modules jdk.incubator.vector} (the pom's second surefire execution). */
class WithoutVectorApiTest {
    @Test
    void cpuSaysWhichFlagToAddAndOpenBestFallsThrough() {
        assertTrue(ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty(),
                "this test must run without the Vector API module");
        BackendProvider.Availability cpu = Backends.provider("cpu").probe();
        assertFalse(cpu.available(), "cpu without the Vector API: " + cpu.detail());
        assertTrue(cpu.detail().contains("--add-modules jdk.incubator.vector"), cpu.detail());
        try (Backend backend = Backends.openBest()) {
            assertNotEquals("cpu", backend.name());
            assertEquals(Backends.bestName(), backend.name());
            double[] losses = TaggerTraining.lossCurve(backend, 10);
            assertTrue(losses[9] < losses[0], "training on " + backend.name() + " without the Vector API");
        }
    }
}
