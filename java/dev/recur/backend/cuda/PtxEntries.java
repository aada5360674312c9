package dev.recur.backend.cuda;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The kernel entry points of a PTX module and the kind of each parameter, read from the PTX text itself:
 * the compiler's own record of the signatures, so launches are checked against what will actually run.
 */
final class PtxEntries {
    /** What a kernel parameter holds, as the launch arguments are typed. */
    enum Kind {
        /** A device pointer: a {@link dev.recur.backend.DeviceBuffer}. */
        POINTER,
        /** A 32-bit integer: an {@link Integer}. */
        INT,
        /** A 32-bit float: a {@link Float}. */
        FLOAT
    }

    private static final Pattern ENTRY = Pattern.compile("\\.entry\\s+([\\w$]+)\\s*\\(([^)]*)\\)");
    private static final Pattern PARAM = Pattern.compile("\\.param\\s+\\.(\\w+)");

    private PtxEntries() {}

    /** Entry name to parameter kinds, in PTX order. */
    static Map<String, List<Kind>> parse(String ptx) {
        Map<String, List<Kind>> entries = new LinkedHashMap<>();
        Matcher m = ENTRY.matcher(ptx);
        while (m.find()) {
            String name = m.group(1);
            List<Kind> kinds = new ArrayList<>();
            String params = m.group(2).trim();
            if (!params.isEmpty()) {
                for (String p : params.split(",")) {
                    Matcher pm = PARAM.matcher(p);
                    if (!pm.find()) throw new IllegalStateException("PTX entry " + name + ": cannot read parameter '" + p.trim() + "'");
                    kinds.add(switch (pm.group(1)) {
                        case "u64", "b64", "s64" -> Kind.POINTER;
                        case "u32", "s32", "b32" -> Kind.INT;
                        case "f32" -> Kind.FLOAT;
                        default -> throw new IllegalStateException("PTX entry " + name + ": parameter type ." + pm.group(1)
                                + " is none of pointer, int or float ('" + p.trim() + "')");
                    });
                }
            }
            entries.put(name, Collections.unmodifiableList(kinds));
        }
        return Collections.unmodifiableMap(entries);
    }
}
