package dev.recur.cli;

import dev.recur.backend.BackendUnavailableException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ParseResult;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.util.Properties;
import java.util.concurrent.Callable;

/**
 * The {@code recur} command line. Exit codes: 0 success, 2 bad input (a wrong option, a missing or
 * malformed file, an unavailable backend) reported as one line on stderr, 1 an internal error.
 * {@code --verbose} adds the stack trace.
 *
 * <p>Build it with {@link #commandLine()}, which installs the one-line error handling; a bare
 * {@code new CommandLine(new Main())} parses and runs the same commands but reports errors in picocli's
 * default, multi-line way.
 */
@Command(name = "recur",
        mixinStandardHelpOptions = true,
        versionProvider = Main.Version.class,
        description = "Recurrent networks (LSTM, GRU, RNN) on the reference, cpu, OpenCL and CUDA backends.",
        subcommands = {DevicesCommand.class, ForwardCommand.class, BenchCommand.class, VerifyCommand.class,
                AttentionCommand.class, DemoCommand.class, LmCommand.class, ForecastCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Callable<Integer> {
    /** Exit code for bad input. */
    public static final int EXIT_BAD_INPUT = 2;
    /** Exit code for a bug or an unexpected failure. */
    public static final int EXIT_INTERNAL = 1;

    @Spec
    CommandSpec spec;

    @CommandLine.Mixin
    VerboseOption verbose;

    @Override
    public Integer call() {
        throw new ParameterException(spec.commandLine(), "missing command: expected one of devices, demo, forward, attention, verify, bench, lm, forecast, help");
    }

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }

    /** A command line for {@code recur} with its error handling installed. */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Main());
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        cl.setParameterExceptionHandler(Main::onParameterError);
        cl.setExecutionExceptionHandler(Main::onExecutionError);
        return cl;
    }

    private static int onParameterError(ParameterException e, String[] args) {
        CommandLine cl = e.getCommandLine();
        PrintWriter err = cl.getErr();
        if (hasVerbose(args)) e.printStackTrace(err);
        String name = cl.getCommandSpec().qualifiedName();
        // Usage mistakes get a pointer to --help; a problem with a file's contents does not.
        String hint = e instanceof BadInput ? "" : " (see '" + name + " --help')";
        err.println(name + ": " + oneLine(e.getMessage()) + hint);
        err.flush();
        return EXIT_BAD_INPUT;
    }

    private static int onExecutionError(Exception e, CommandLine cl, ParseResult parsed) {
        PrintWriter err = cl.getErr();
        boolean verbose = false;
        for (ParseResult p = parsed; p != null; p = p.subcommand()) verbose |= p.hasMatchedOption("--verbose");
        if (verbose) e.printStackTrace(err);
        String name = cl.getCommandSpec().qualifiedName();
        int code;
        String message;
        if (e instanceof IllegalArgumentException || e instanceof IOException || e instanceof UncheckedIOException
                || e instanceof BackendUnavailableException) {
            code = EXIT_BAD_INPUT;
            message = e.getMessage() != null ? e.getMessage() : e.toString();
        } else {
            code = EXIT_INTERNAL;
            message = "internal error: " + e + (verbose ? "" : " (rerun with --verbose for the stack trace)");
        }
        err.println(name + ": " + oneLine(message));
        err.flush();
        return code;
    }

    private static boolean hasVerbose(String[] args) {
        for (String a : args) if (a.equals("--verbose")) return true;
        return false;
    }

    static String oneLine(String s) {
        if (s == null) return "";
        return s.strip().replaceAll("\\s*\\R\\s*", "; ");
    }

    /** Bad input found while running (a file's contents, an option combination): exit 2 with one line. */
    static final class BadInput extends ParameterException {
        BadInput(CommandLine cl, String message) {
            super(cl, message);
        }
    }

    /** {@code --verbose}, on every command. */
    static final class VerboseOption {
        @CommandLine.Option(names = "--verbose", description = "On errors, print the stack trace too.")
        boolean verbose;
    }

    /** The project version recorded in the jar, or "development build" when run from classes. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = null;
            // Maven's jar plugin stores the project version here; run from classes/ there is none.
            try (InputStream in = Main.class.getResourceAsStream("/META-INF/maven/dev.recur/recur/pom.properties")) {
                if (in != null) {
                    Properties p = new Properties();
                    p.load(in);
                    v = p.getProperty("version");
                }
            } catch (IOException e) {
                v = null;
            }
            return new String[] {"recur " + (v != null ? v : "(development build)") + ", Java " + Runtime.version()};
        }
    }
}
