package dev.recur.cli;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every command's {@code --help} renders: picocli formats descriptions with {@code String.format}, so a bare
 * {@code %} (as in "the first 90%") makes it print a warning on stderr and show the raw text.
 */
class HelpTextTest {
    @Test
    void everyCommandsHelpFormatsWithoutAWarning() {
        CommandLine main = Main.commandLine();
        assertTrue(main.getSubcommands().size() >= 8, "subcommands: " + main.getSubcommands().keySet());
        PrintStream saved = System.err;
        for (String name : main.getSubcommands().keySet()) {
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            CliRun run;
            try {
                run = CliRun.of(name, "--help");
            } finally {
                System.setErr(saved);
            }
            String warnings = err.toString(StandardCharsets.UTF_8);
            assertEquals(0, run.code(), name + " --help: " + run);
            assertFalse(warnings.contains("Could not format"), name + " --help: picocli could not format its text: " + warnings);
            assertFalse(run.out().contains("%n"), name + " --help shows an unformatted %n:\n" + run.out());
        }
    }
}
