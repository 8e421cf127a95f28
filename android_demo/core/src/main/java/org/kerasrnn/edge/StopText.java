package org.kerasrnn.edge;

import java.util.List;

/**
 * Stop strings (export/SPEC.md, "Stop strings"): streams generated text up to the first stop string,
 * never past it. {@link #add} returns what may be written now, holding back a tail that could begin a
 * stop string; {@link #stopped()} once one has occurred; the stop string itself is never written.
 */
public final class StopText {
    private final List<String> stop;
    private final StringBuilder text = new StringBuilder();
    private int shown;
    private boolean stopped;

    public StopText(List<String> stop) {
        for (String s : stop) {
            if (s.isEmpty()) {
                throw new IllegalArgumentException("a stop string must not be empty: give the text that ends the "
                        + "generation");
            }
        }
        this.stop = stop;
    }

    /**
     * Where {@code text} ends by the stop strings: the start of the leftmost occurrence of any, or -1;
     * {@code checked}: the length of a prefix of it known to hold none.
     */
    public static int index(CharSequence text, List<String> stop, int checked) {
        String string = text.toString();
        int cut = -1;
        for (String s : stop) {
            int i = string.indexOf(s, Math.max(0, checked - s.length() + 1));
            if (i >= 0 && (cut < 0 || i < cut)) {
                cut = i;
            }
        }
        return cut;
    }

    /** Adds a token's text; returns the text that may be written now. */
    public String add(String piece) {
        int checked = text.length();
        text.append(piece);
        int end = index(text, stop, checked);
        stopped = end >= 0;
        if (!stopped) {
            int held = 0;
            for (String s : stop) {
                for (int k = held + 1; k < s.length(); k++) {
                    if (text.length() >= k && text.substring(text.length() - k).equals(s.substring(0, k))) {
                        held = k;
                    }
                }
            }
            end = text.length() - held;
        }
        String out = text.substring(shown, end);
        shown = end;
        return out;
    }

    /** At the end without a stop string: the text held back. */
    public String rest() {
        String out = text.substring(shown);
        shown = text.length();
        return out;
    }

    public boolean stopped() {
        return stopped;
    }
}
