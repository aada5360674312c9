package dev.recur.backend.cuda;

import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * What both bindings keep about loading: each {@link Part} is tried once per binding (a library that failed to
 * load stays failed, with its reason), and what did load is listed for {@code recur devices}.
 */
abstract class CudaBinding implements CudaApi {
    private final Map<Part, Optional<String>> loaded = new EnumMap<>(Part.class);
    private final List<Library> libraries = Collections.synchronizedList(new ArrayList<>());

    @Override
    public List<Library> libraries() {
        synchronized (libraries) {
            return List.copyOf(libraries);
        }
    }

    @Override
    public synchronized String load(Part part) {
        return loaded.computeIfAbsent(part, p -> Optional.ofNullable(tryLoad(p))).orElse(null);
    }

    /** Loads one part: null when it loaded (having called {@link #loaded}), else why not, naming the file. */
    abstract String tryLoad(Part part);

    /** Records a library that loaded, with its version. */
    void loaded(Library library) {
        libraries.add(library);
    }
}
