package dev.recur.backend.opencl;

import org.jocl.Pointer;
import org.jocl.Sizeof;
import org.jocl.cl_event;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.jocl.CL.*;

/** TEMPORARY profiling hook (scratch, not to be committed). */
final class Prof {
    static final boolean ON = Boolean.getBoolean("recur.opencl.profile");
    private static final List<Object[]> pending = new ArrayList<>();
    private static final Map<String, long[]> totals = new TreeMap<>();

    static cl_event event(String label) {
        if (!ON) return null;
        cl_event e = new cl_event();
        pending.add(new Object[] {label, e});
        return e;
    }

    static void resolve() {
        if (!ON) return;
        for (Object[] p : pending) {
            cl_event e = (cl_event) p[1];
            long[] s = new long[1], t = new long[1];
            clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_START, Sizeof.cl_ulong, Pointer.to(s), null);
            clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_END, Sizeof.cl_ulong, Pointer.to(t), null);
            long[] acc = totals.computeIfAbsent((String) p[0], k -> new long[2]);
            acc[0]++;
            acc[1] += t[0] - s[0];
            clReleaseEvent(e);
        }
        pending.clear();
    }

    static void dump() {
        if (!ON) return;
        resolve();
        long all = 0;
        for (long[] v : totals.values()) all += v[1];
        System.err.printf("%-50s %8s %10s %9s%n", "op", "count", "total ms", "us/op");
        for (var en : totals.entrySet()) {
            long[] v = en.getValue();
            System.err.printf("%-50s %8d %10.2f %9.1f%n", en.getKey(), v[0], v[1] / 1e6, v[1] / 1e3 / v[0]);
        }
        System.err.printf("total %.2f ms%n", all / 1e6);
        totals.clear();
    }
}
