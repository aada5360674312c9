package dev.recur.cli;

import dev.recur.backend.BackendProvider;
import dev.recur.backend.Backends;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DevicesCommandTest {
    @Test
    void listsEveryBackendWithStatusAndTheDefault() {
        CliRun r = CliRun.of("devices");
        assertEquals(0, r.code(), r.toString());
        assertEquals("", r.err(), r.toString());
        String[] lines = r.out().strip().split("\\R");
        assertTrue(lines[0].startsWith("backend"), r.toString());
        assertTrue(Arrays.stream(lines).anyMatch(l -> l.matches("reference\\s+available\\s+\\S.*")),
                "reference must be listed as available: " + r);
        for (BackendProvider p : Backends.providers()) {
            String status = p.probe().available() ? "available" : "unavailable";
            assertTrue(Arrays.stream(lines).anyMatch(l -> l.matches(p.name() + "\\s+" + status + "\\s+\\S.*")),
                    p.name() + " should be listed as " + status + " with a detail: " + r);
        }
        assertEquals("default: " + Backends.bestName(), lines[lines.length - 1], r.toString());
    }

    @Test
    void helpAndUnknownOption() {
        CliRun help = CliRun.of("devices", "--help");
        assertEquals(0, help.code(), help.toString());
        assertTrue(help.out().contains("Usage: recur devices"), help.toString());

        CliRun bad = CliRun.of("devices", "--frobnicate");
        assertEquals(2, bad.code(), bad.toString());
        assertEquals(1, bad.errLines().length, bad.toString());
        assertTrue(bad.err().contains("--frobnicate"), bad.toString());
        assertEquals("", bad.out(), bad.toString());
    }

    @Test
    void noCommandAndUnknownCommandExitTwoWithOneLine() {
        CliRun none = CliRun.of();
        assertEquals(2, none.code(), none.toString());
        assertEquals(1, none.errLines().length, none.toString());
        assertTrue(none.err().contains("missing command"), none.toString());

        CliRun version = CliRun.of("--version");
        assertEquals(0, version.code(), version.toString());
        assertTrue(version.out().startsWith("recur ") && version.out().contains("Java " + Runtime.version().feature()),
                version.toString());

        CliRun unknown = CliRun.of("frobnicate");
        assertEquals(2, unknown.code(), unknown.toString());
        assertEquals(1, unknown.errLines().length, unknown.toString());
        assertTrue(unknown.err().contains("frobnicate"), unknown.toString());
    }
}
