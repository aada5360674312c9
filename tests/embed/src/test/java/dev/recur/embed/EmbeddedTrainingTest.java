package dev.recur.embed;

import dev.recur.backend.Backend;
import dev.recur.backend.Backends;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** recur as a dependency: it trains on the best backend, and brings none of the command line's libraries. */
class EmbeddedTrainingTest {
    @Test
    void aTaggerTrainsOnTheBestBackend() {
        try (Backend backend = Backends.openBest()) {
            if ("true".equals(System.getenv("CI"))) {
                // CI installs PoCL: the best backend there is a device backend, never the fallback.
                assertTrue(!backend.name().equals("reference"), "CI: expected a device backend, got " + backend.name());
            }
            double[] losses = TaggerTraining.lossCurve(backend, 40);
            double first = TaggerTraining.mean(losses, 0, 5), last = TaggerTraining.mean(losses, 35, 40);
            System.out.printf("embedded training on %s (%s): loss %.4f -> %.4f%n", backend.name(),
                    backend.deviceName(), first, last);
            assertTrue(last < 0.6 * first, "loss on " + backend.name() + " should fall by 40% in 40 steps: "
                    + Arrays.toString(losses));
        }
    }

    @Test
    void theCommandLineLibrariesAreNotOnTheClassPath() {
        for (String cls : new String[] {"picocli.CommandLine", "org.knowm.xchart.XYChart", "me.tongfei.progressbar.ProgressBar"}) {
            assertThrows(ClassNotFoundException.class, () -> Class.forName(cls),
                    cls + " reached a trainer's class path through dev.recur:recur");
        }
    }
}
