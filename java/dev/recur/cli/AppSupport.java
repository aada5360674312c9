package dev.recur.cli;

import dev.recur.backend.Backend;
import dev.recur.backend.BackendProvider;
import dev.recur.backend.Backends;
import dev.recur.io.SafeTensors;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import picocli.CommandLine;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;

/** What the commands share: backends, progress bars, checks of options and files. */
final class AppSupport {
    private AppSupport() {}

    static CommandLine.ParameterException bad(CommandLine cl, String message) {
        return new Main.BadInput(cl, message);
    }

    /** The named backend, or the best available when {@code name} is null; a bad name or an unavailable backend is exit 2. */
    static Backend openBackend(CommandLine cl, String name) {
        String n = name != null ? name : Backends.bestName();
        try {
            Backends.provider(n);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(cl, "--backend: " + e.getMessage().replaceFirst("^backend: ", ""));
        }
        return Backends.open(n);
    }

    static void positive(CommandLine cl, String option, long v) {
        if (v <= 0) throw new CommandLine.ParameterException(cl, option + ": expected > 0, got " + v);
    }

    /** An existing, readable regular file, else exit 2 naming the option. */
    static void readableFile(CommandLine cl, String option, Path file) {
        if (!Files.exists(file)) throw bad(cl, option + ": file " + file + " does not exist");
        if (!Files.isRegularFile(file)) throw bad(cl, option + ": " + file + " is not a regular file");
        if (!Files.isReadable(file)) throw bad(cl, option + ": file " + file + " is not readable");
    }

    /** {@code out} names a file in an existing folder (it need not exist yet), else exit 2 naming the option. */
    static void outputFile(CommandLine cl, String option, Path out) {
        Path abs = out.toAbsolutePath();
        if (Files.isDirectory(abs)) throw bad(cl, option + ": " + out + " is a folder, expected a file name");
        Path parent = abs.getParent();
        if (parent == null || !Files.isDirectory(parent)) throw bad(cl, option + ": folder " + parent + " does not exist");
    }

    /**
     * Reads a safetensors file given by an option: a missing or irregular file is exit 2 naming the option; any
     * other I/O or format error is an IOException whose message names the option and the file.
     */
    static SafeTensors readSafeTensors(CommandLine cl, String option, Path file) throws IOException {
        if (!Files.exists(file)) throw bad(cl, option + ": no such file: " + file);
        if (!Files.isRegularFile(file)) throw bad(cl, option + ": not a regular file: " + file);
        try {
            return SafeTensors.read(file);
        } catch (NoSuchFileException e) {
            throw bad(cl, option + ": no such file: " + file);
        } catch (IOException e) {
            // Format errors already name the file; other I/O errors may not.
            String m = e.getMessage() != null ? e.getMessage() : e.toString();
            throw new IOException(option + ": " + (m.contains(file.toString()) ? m : file + ": " + m), e);
        }
    }

    /** Creates the output folder (exit 2 when it is a file or cannot be created). */
    static void outputFolder(CommandLine cl, String option, Path dir) {
        if (Files.exists(dir) && !Files.isDirectory(dir)) throw bad(cl, option + ": " + dir + " exists and is not a folder");
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw bad(cl, option + ": cannot create folder " + dir + ": " + e.getMessage());
        }
    }

    /**
     * A progress bar drawn on the command's stderr: block characters and the terminal's width on a console,
     * plain ASCII 100 columns wide otherwise (a log file or a test).
     */
    static ProgressBar progress(CommandLine cl, String task, long max) {
        // Since JDK 22 System.console() exists even when redirected; isTerminal() tells a real terminal.
        boolean console = System.console() != null && System.console().isTerminal();
        PrintStream stream = new PrintStream(new WriterStream(cl.getErr()), true, StandardCharsets.UTF_8);
        return new ProgressBarBuilder().setTaskName(task).setInitialMax(max).setUpdateIntervalMillis(200)
                .setStyle(console ? ProgressBarStyle.UNICODE_BLOCK : ProgressBarStyle.ASCII)
                .setConsumer(console ? new ConsoleProgressBarConsumer(stream) : new ConsoleProgressBarConsumer(stream, 100))
                .showSpeed().build();
    }

    /** Bytes written to a PrintWriter (UTF-8 decoded per write call, which PrintStream makes whole). */
    private static final class WriterStream extends OutputStream {
        private final PrintWriter out;

        WriterStream(PrintWriter out) {
            this.out = out;
        }

        @Override
        public void write(int b) {
            out.write(b);
        }

        @Override
        public void write(byte[] b, int off, int len) {
            out.write(new String(b, off, len, StandardCharsets.UTF_8));
        }

        @Override
        public void flush() {
            out.flush();
        }
    }

    /** {@code 12.3 s} or {@code 2 min 5 s}. */
    static String seconds(double s) {
        if (s < 90) return String.format("%.1f s", s);
        return String.format("%d min %d s", (int) (s / 60), (int) Math.round(s % 60));
    }
}
