package dev.recur.nn;

import java.util.List;

/** Releasing what a model step allocated on a device. */
public final class Resources {
    private Resources() {}

    /**
     * Closes every resource in reverse order of the list and empties it; all of them are closed even when one throws,
     * and the first failure is rethrown with the later ones suppressed in it (a checked one wrapped).
     */
    public static void closeAll(List<? extends AutoCloseable> list) {
        RuntimeException first = null;
        for (int i = list.size() - 1; i >= 0; i--) {
            try {
                list.get(i).close();
            } catch (Exception e) {
                if (first == null) first = e instanceof RuntimeException r ? r : new IllegalStateException(e);
                else first.addSuppressed(e);
            }
        }
        list.clear();
        if (first != null) throw first;
    }
}
