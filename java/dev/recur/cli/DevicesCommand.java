package dev.recur.cli;

import dev.recur.backend.BackendProvider;
import dev.recur.backend.Backends;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code recur devices}: every backend, whether it is available here and why not, and the default. */
@Command(name = "devices", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = {"List every backend: available or not (and why), its devices, and which one is the default.",
                "The default is the first available of cuda, opencl, cpu, reference."})
final class DevicesCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @CommandLine.Mixin
    Main.VerboseOption verbose;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        List<String[]> rows = new ArrayList<>();
        for (BackendProvider p : Backends.providers()) {
            BackendProvider.Availability a;
            try {
                a = p.probe();
            } catch (RuntimeException | LinkageError e) {
                // The contract says probing never throws; a backend breaking it is still reported, not fatal.
                a = BackendProvider.Availability.no("probe failed: " + e);
            }
            rows.add(new String[] {p.name(), a.available() ? "available" : "unavailable", Main.oneLine(a.detail())});
        }
        String best = Backends.bestName();
        int w = "backend".length();
        for (String[] r : rows) w = Math.max(w, r[0].length());
        String fmt = "%-" + w + "s  %-11s  %s%n";
        out.printf(fmt, "backend", "status", "detail");
        for (String[] r : rows) out.printf(fmt, r[0], r[1], r[2]);
        out.println("default: " + best);
        out.flush();
        return 0;
    }
}
