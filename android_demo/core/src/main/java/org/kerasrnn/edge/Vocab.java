package org.kerasrnn.edge;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Token ids to text and back (export/SPEC.md, "Vocabulary"): {@code char} ids index a list of
 * Unicode code points, in the list's order (sorted by code point for a run trained from scratch; a
 * fine-tuned run's grown list appends new characters); {@code byte} ids are the bytes of UTF-8 text.
 */
public final class Vocab {
    public enum Kind { CHAR, BYTE }

    private final Kind kind;
    /** One code point per id (char kind only; null for byte). */
    private final String[] chars;
    private final Map<Integer, Integer> idOfCodePoint;

    private Vocab(Kind kind, String[] chars) {
        this.kind = kind;
        this.chars = chars;
        this.idOfCodePoint = new HashMap<Integer, Integer>();
        if (chars != null) {
            for (int id = 0; id < chars.length; id++) {
                idOfCodePoint.put(chars[id].codePointAt(0), id);
            }
        }
    }

    public static Vocab bytes() {
        return new Vocab(Kind.BYTE, null);
    }

    /** A char vocabulary; each entry must be one code point, listed once, in any order (ids follow it). */
    public static Vocab chars(List<String> chars) {
        if (chars.isEmpty()) {
            throw new IllegalArgumentException("a char vocabulary needs at least one character");
        }
        Set<Integer> seen = new HashSet<Integer>();
        for (int id = 0; id < chars.size(); id++) {
            String c = chars.get(id);
            if (c == null || c.isEmpty() || c.codePointCount(0, c.length()) != 1) {
                throw new IllegalArgumentException("vocabulary entry " + id + " must be exactly one character, got "
                        + (c == null ? "null" : quote(c)));
            }
            if (!seen.add(c.codePointAt(0))) {
                throw new IllegalArgumentException("vocabulary characters must be listed once; entry " + id + " ("
                        + quote(c) + ") repeats one");
            }
        }
        return new Vocab(Kind.CHAR, chars.toArray(new String[0]));
    }

    /**
     * The manifest's {@code "vocab"} object: {@code {"kind": "char", "size": V, "chars": [...]}} or
     * {@code {"kind": "byte", "size": 256}}; the size must match.
     */
    public static Vocab fromJson(Object json) {
        if (!(json instanceof Map)) {
            throw new IllegalArgumentException("\"vocab\" must be an object");
        }
        Map<?, ?> object = (Map<?, ?>) json;
        Object kind = object.get("kind");
        Object size = object.get("size");
        Object chars = object.get("chars");
        if (!(size instanceof Long)) {
            throw new IllegalArgumentException("\"vocab.size\" must be an integer, got " + size);
        }
        Vocab vocab;
        if ("byte".equals(kind)) {
            if (chars != null) {
                throw new IllegalArgumentException("a byte vocabulary must not list \"chars\"");
            }
            vocab = bytes();
        } else if ("char".equals(kind)) {
            if (!(chars instanceof List)) {
                throw new IllegalArgumentException("a char vocabulary must list its \"chars\"");
            }
            List<String> entries = new ArrayList<String>();
            for (Object entry : (List<?>) chars) {
                if (!(entry instanceof String)) {
                    throw new IllegalArgumentException("\"vocab.chars\" must hold strings, got " + entry);
                }
                entries.add((String) entry);
            }
            vocab = chars(entries);
        } else {
            throw new IllegalArgumentException("unknown vocabulary kind " + kind + ": use \"char\" or \"byte\"");
        }
        if ((Long) size != vocab.size()) {
            throw new IllegalArgumentException("\"vocab.size\" is " + size + " but the " + kind
                    + " vocabulary has " + vocab.size() + " tokens");
        }
        return vocab;
    }

    public Kind kind() {
        return kind;
    }

    /** The number of ids, V: the length of the logits. */
    public int size() {
        return kind == Kind.BYTE ? 256 : chars.length;
    }

    /** The ids of a prime; characters outside a char vocabulary are an error listing them. */
    public int[] encode(String text) {
        if (kind == Kind.BYTE) {
            byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
            int[] ids = new int[utf8.length];
            for (int i = 0; i < utf8.length; i++) {
                ids[i] = utf8[i] & 0xFF;
            }
            return ids;
        }
        int[] ids = new int[text.codePointCount(0, text.length())];
        TreeSet<Integer> unknown = new TreeSet<Integer>();
        for (int offset = 0, n = 0; offset < text.length(); n++) {
            int codePoint = text.codePointAt(offset);
            Integer id = idOfCodePoint.get(codePoint);
            if (id == null) {
                unknown.add(codePoint);
            } else {
                ids[n] = id;
            }
            offset += Character.charCount(codePoint);
        }
        if (!unknown.isEmpty()) {
            StringBuilder shown = new StringBuilder();
            for (int codePoint : unknown) {
                shown.append(shown.length() == 0 ? "" : " ").append(quote(new String(Character.toChars(codePoint))));
            }
            throw new IllegalArgumentException("the prime has characters outside the vocabulary: " + shown
                    + "; remove them, or train in byte mode (--tokens byte)");
        }
        return ids;
    }

    /** A fresh decoder for one stream of generated ids (byte mode keeps partial UTF-8 sequences in it). */
    public TokenDecoder newDecoder() {
        if (kind == Kind.BYTE) {
            return new Utf8StreamDecoder();
        }
        return new TokenDecoder() {
            @Override
            public String decode(int id) {
                return chars[id];
            }
        };
    }

    private static String quote(String c) {
        StringBuilder out = new StringBuilder("'");
        for (int i = 0; i < c.length(); ) {
            int codePoint = c.codePointAt(i);
            if (codePoint < 0x20 || codePoint == 0x7F) {
                out.append(String.format("\\x%02x", codePoint));
            } else {
                out.appendCodePoint(codePoint);
            }
            i += Character.charCount(codePoint);
        }
        return out.append('\'').toString();
    }
}
