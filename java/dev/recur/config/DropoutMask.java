package dev.recur.config;

/**
 * The counter-based random numbers behind every dropout mask. The same function is written in
 * {@code kernels/common/random.h}, so a device generates masks identical to the reference's for the
 * same seed, without transferring them.
 *
 * <pre>
 * mix(x)   = lowbias32 finaliser: x ^= x>>16; x *= 0x7feb352d; x ^= x>>15; x *= 0x846ca68b; x ^= x>>16
 * bits(seed, stream, index) = mix(mix(mix(lo(seed) ^ mix(hi(seed))) ^ stream) ^ index) >>> 8   (24 bits)
 * keep  iff bits >= threshold(p) = ceil(p * 2^24);  kept values are scaled by 1/(1-p)
 * </pre>
 *
 * Streams: {@code stream(layer, direction, kind) = (layer*2 + direction)*4 + kind}, kind
 * {@link #INPUT} (variational, index {@code b*in + j}), {@link #RECURRENT} (variational, index
 * {@code b*Hout + j}), {@link #BETWEEN_LAYERS} (direction 0, index {@code (t*B + b)*width + j}).
 * All arithmetic is unsigned 32-bit; Java's wrapping int multiply gives the same bits.
 */
public final class DropoutMask {
    public static final int INPUT = 0;
    public static final int RECURRENT = 1;
    public static final int BETWEEN_LAYERS = 2;

    private DropoutMask() {}

    public static int mix(int x) {
        x ^= x >>> 16;
        x *= 0x7feb352d;
        x ^= x >>> 15;
        x *= 0x846ca68b;
        x ^= x >>> 16;
        return x;
    }

    public static int stream(int layer, int direction, int kind) {
        return (layer * 2 + direction) * 4 + kind;
    }

    /** 24 random bits for (seed, stream, index). */
    public static int bits(long seed, int stream, int index) {
        int h = mix((int) seed ^ mix((int) (seed >>> 32)));
        h = mix(h ^ stream);
        h = mix(h ^ index);
        return h >>> 8;
    }

    /** The integer threshold for drop probability p: keep iff bits >= threshold. */
    public static int threshold(double p) {
        return (int) Math.ceil(p * 16777216.0);
    }

    /** The mask value: 0 (dropped) or 1/(1-p) (kept). */
    public static double value(long seed, int stream, int index, double p) {
        if (p == 0) return 1.0;
        return bits(seed, stream, index) >= threshold(p) ? 1.0 / (1.0 - p) : 0.0;
    }
}
