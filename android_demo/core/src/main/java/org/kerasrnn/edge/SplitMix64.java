package org.kerasrnn.edge;

/**
 * The sampling contract's random number generator (export/SPEC.md, "Random numbers: SplitMix64").
 *
 * <p>Java's {@code long} wraps modulo 2^64 exactly like the contract's unsigned arithmetic, so the
 * state is a plain {@code long}; read unsigned seeds with {@link Long#parseUnsignedLong(String)}.
 */
public final class SplitMix64 {
    private static final long GOLDEN = 0x9E3779B97F4A7C15L;
    private long state;

    public SplitMix64(long seed) {
        state = seed;
    }

    /** The next 64 random bits; compare with {@link Long#toUnsignedString(long)}. */
    public long nextU64() {
        state += GOLDEN;
        long z = state;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** Uniform in [0, 1) with 53 random bits. */
    public double nextDouble() {
        return (nextU64() >>> 11) * 0x1.0p-53;
    }

    /**
     * The seed of stream {@code i} of a batch sampled with {@code seed} (export/SPEC.md, "Many samples"):
     * {@code seed} itself for stream 0; for i >= 1 the i-th number a SplitMix64 seeded with {@code seed}
     * returns. Both are unsigned 64-bit (i may be any of the 2^64 values).
     */
    public static long streamSeed(long seed, long i) {
        return i == 0 ? seed : new SplitMix64(seed + (i - 1) * GOLDEN).nextU64();
    }
}
