package dev.recur.backend.cuda;

import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Optional;

/**
 * Compiled kernels on disk, one file per unit, source hash, architecture and form
 * ({@code lstm-<hash>-sm_80.ptx}, {@code lstm-<hash>-sm_80.cubin}), so NVRTC runs once per machine and
 * kernel version rather than at every start. The folder is
 * {@code $RECUR_CUDA_CACHE}, else {@code $XDG_CACHE_HOME/recur/cuda}, else {@code ~/.cache/recur/cuda}.
 * A cache that cannot be written only costs a recompile, never a failure.
 */
final class KernelCache {
    private final Path dir;

    KernelCache(Path dir) {
        this.dir = dir;
    }

    static KernelCache standard() {
        return new KernelCache(defaultDir(System.getenv("RECUR_CUDA_CACHE"), System.getenv("XDG_CACHE_HOME"),
                System.getProperty("user.home")));
    }

    static Path defaultDir(String override, String xdgCache, String home) {
        if (override != null && !override.isBlank()) return Path.of(override);
        if (xdgCache != null && !xdgCache.isBlank()) return Path.of(xdgCache, "recur", "cuda");
        return Path.of(home, ".cache", "recur", "cuda");
    }

    Path dir() {
        return dir;
    }

    /** The file for one compiled form: {@code <stem>-<hash>-<arch>.<ext>}, ext {@code ptx} or {@code cubin}. */
    Path file(String stem, String hash, String arch, String ext) {
        return dir.resolve(stem + "-" + hash + "-" + arch + "." + ext);
    }

    Optional<byte[]> read(String stem, String hash, String arch, String ext) {
        Path f = file(stem, hash, arch, ext);
        try {
            if (!Files.isRegularFile(f)) return Optional.empty();
            return Optional.of(Files.readAllBytes(f));
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    /** Writes through a temporary file and a rename, so a reader never sees half a file. */
    void write(String stem, String hash, String arch, String ext, byte[] content) {
        Path f = file(stem, hash, arch, ext);
        Path tmp = null;
        try {
            Files.createDirectories(dir);
            tmp = Files.createTempFile(dir, stem + "-", ".tmp");
            Files.write(tmp, content);
            try {
                Files.move(tmp, f, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, f, StandardCopyOption.REPLACE_EXISTING);
            }
            tmp = null;
        } catch (IOException e) {
            // An unwritable cache costs a recompile next time, nothing more.
        } finally {
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // Best effort: a stray temporary file is harmless.
                }
            }
        }
    }
}
