package dev.recur.cli;

import dev.recur.apps.Charts;
import dev.recur.apps.DateDemo;
import dev.recur.apps.DateFormats;
import dev.recur.backend.reference.ReferenceBackend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code recur demo} end to end at reduced steps on the reference backend, its pictures, seeding and errors. */
class DemoCommandTest {
    /**
     * Measured on the reference backend, seed 1, 300 held out: 200 steps gave 100% (300 of 300; 29 s on a busy
     * 2-core machine), 150 steps 96.3%. The threshold leaves room for platform-dependent float64 rounding
     * (Math.exp, Math.tanh) to move a few borderline examples.
     */
    static final int STEPS = 200;
    static final double MIN_ACCURACY = 0.97;

    @TempDir
    Path dir;

    static BufferedImage png(Path file) throws IOException {
        assertTrue(Files.isRegularFile(file), file + " was not written");
        BufferedImage img = ImageIO.read(file.toFile());
        assertNotNull(img, file + " does not decode as an image");
        return img;
    }

    @Test
    void reducedTrainingReachesTheStatedAccuracyAndDrawsBothPictures() throws IOException {
        Path out = dir.resolve("pictures");
        CliRun r = CliRun.of("demo", "--backend", "reference", "--steps", "" + STEPS, "--held-out", "300", "--seed", "1", "--out", out.toString());
        assertEquals(0, r.code(), r.toString());
        Matcher m = Pattern.compile("held-out exact match: ([0-9.]+)% \\((\\d+) of (\\d+)\\)").matcher(r.out());
        assertTrue(m.find(), "no accuracy line in:\n" + r.out());
        assertEquals(300, Integer.parseInt(m.group(3)), "held-out examples");
        double acc = Integer.parseInt(m.group(2)) / 300.0;
        System.out.println("demo, " + STEPS + " steps on reference: held-out exact match " + acc);
        assertTrue(acc >= MIN_ACCURACY, "held-out exact match after " + STEPS + " steps: expected >= " + MIN_ACCURACY + ", got " + acc);
        assertTrue(r.out().contains("backend   reference"), r.out());
        // At least the eight example translations, each "source" -> ISO date.
        long shown = r.out().lines().filter(l -> l.matches("\\s+\".*\"\\s+-> \\S+ .*")).count();
        assertTrue(shown >= 8, "expected >= 8 example translations, got " + shown + " in:\n" + r.out());
        // The progress bar went to stderr and ended at 100%.
        assertTrue(r.err().contains(STEPS + "/" + STEPS), "progress bar did not finish:\n" + r.err());
        for (String name : new String[] {"loss.png", "attention.png"}) {
            BufferedImage img = png(out.resolve(name));
            assertEquals(Charts.WIDTH, img.getWidth(), name + " width");
            assertEquals(Charts.HEIGHT, img.getHeight(), name + " height");
        }
    }

    @Test
    void theSameSeedGivesTheSameTrainingAndPredictions() {
        DateDemo.Settings s = new DateDemo.Settings(6, 8, 20, 42, 0.01, 8, 8);
        DateDemo.Result a, b, c;
        try (ReferenceBackend be = new ReferenceBackend()) {
            a = new DateDemo(s).run(be, null);
            b = new DateDemo(s).run(be, null);
            c = new DateDemo(new DateDemo.Settings(6, 8, 20, 43, 0.01, 8, 8)).run(be, null);
        }
        assertArrayEquals(a.losses(), b.losses(), 0.0, "losses with the same seed");
        assertEquals(a.heldOut(), b.heldOut(), "held-out predictions with the same seed");
        assertFalse(java.util.Arrays.equals(a.losses(), c.losses()), "another seed gave the same losses");
    }

    @Test
    void everyFormatWritesTheSameDateDifferentlyAndTheAlphabetCoversThem() {
        LocalDate d = LocalDate.of(1997, 3, 3);
        java.util.Set<String> seen = new java.util.HashSet<>();
        String alphabet = DateFormats.sourceAlphabet();
        for (DateFormats.Format f : DateFormats.formats()) {
            String s = f.write(d);
            assertTrue(seen.add(s), "format " + f.name() + " repeats " + s);
            for (char ch : s.toCharArray()) assertTrue(alphabet.indexOf(ch) >= 0, "'" + ch + "' of " + s + " missing from the alphabet");
        }
        assertTrue(seen.contains("the 3rd of March 1997"), seen.toString());
        assertTrue(seen.contains("3/3/97"), seen.toString());
        assertTrue(seen.contains("Mar 3, 1997"), seen.toString());
        assertTrue(seen.contains("Monday, March 3 1997"), seen.toString());
        assertTrue(seen.contains("1997.03.03"), seen.toString());
        assertEquals("March 22nd, 2023", DateFormats.formats().get(15).write(LocalDate.of(2023, 3, 22)), "ordinal 22");
        assertEquals("the 11th of January 2001", DateFormats.formats().get(14).write(LocalDate.of(2001, 1, 11)), "ordinal 11");
        assertEquals("mon 1st mar 04", DateFormats.formats().get(16).write(LocalDate.of(2004, 3, 1)), "ordinal 1, lower case");
    }

    @Test
    void withoutBackendItRunsOnTheBestAndSaysWhyTheOnesBeforeItWerePassedOver() {
        CliRun r = CliRun.of("demo", "--steps", "2", "--held-out", "20", "--out", dir.resolve("best").toString());
        assertEquals(0, r.code(), r.toString());
        String best = dev.recur.backend.Backends.bestName();
        assertTrue(r.out().contains("backend   " + best + " "), r.out());
        for (dev.recur.backend.BackendProvider p : dev.recur.backend.Backends.providers()) {
            if (p.name().equals(best)) break;
            assertTrue(r.out().contains("(" + p.name() + " unavailable: " + p.probe().detail() + ")"), r.out());
        }
    }

    @Test
    void jsonSummaryOnTheLastLineWithTheTrafficOfADeviceBackend() {
        for (String backend : new String[] {"cpu", "reference"}) {
            CliRun r = CliRun.of("demo", "--backend", backend, "--steps", "3", "--held-out", "20", "--json", "--out",
                    dir.resolve("json-" + backend).toString());
            assertEquals(0, r.code(), r.toString());
            List<String> lines = r.out().lines().toList();
            String last = lines.get(lines.size() - 1);
            assertTrue(last.startsWith("{\"backend\":\"" + backend + "\",\"steps\":3,") && last.endsWith("}"), last);
            for (String key : new String[] {"step_bytes_to_device", "step_bytes_to_host", "step_blocking_waits",
                    "decode_bytes_to_device", "decode_bytes_to_host", "decode_blocking_waits"}) {
                Matcher m = Pattern.compile("\"" + key + "\":([^,}]+)").matcher(last);
                assertTrue(m.find(), key + " in " + last);
                if (backend.equals("reference")) {
                    assertEquals("null", m.group(1), key + ": the reference keeps no traffic counts");
                } else {
                    // Three steps of a seq2seq model on host tensors: batches up, results down; the decoding too.
                    assertTrue(Double.parseDouble(m.group(1)) > 0, key + " on cpu: " + last);
                }
            }
            assertEquals(backend.equals("cpu"), r.out().contains("traffic   per training step: "), r.out());
        }
    }

    @Test
    void badOptionsExitTwoWithOneLine() throws IOException {
        Path file = Files.writeString(dir.resolve("a-file"), "x");
        String[][] cases = {
                {"--steps", "0"},
                {"--held-out", "-1"},
                {"--backend", "nope"},
                {"--out", file.toString()},
                {"--seed", "abc"},
        };
        String[] names = {"--steps", "--held-out", "--backend", "--out", "--seed"};
        for (int i = 0; i < cases.length; i++) {
            String[] args = new String[cases[i].length + 1];
            args[0] = "demo";
            System.arraycopy(cases[i], 0, args, 1, cases[i].length);
            CliRun r = CliRun.of(args);
            assertEquals(2, r.code(), String.join(" ", args) + "\n" + r);
            assertEquals(1, r.errLines().length, String.join(" ", args) + "\n" + r);
            assertTrue(r.err().contains(names[i]), "expected the message to name " + names[i] + ": " + r.err());
            assertEquals("", r.out(), "nothing on stdout for " + String.join(" ", args));
        }
    }
}
