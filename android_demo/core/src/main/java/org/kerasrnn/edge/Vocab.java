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
 * fine-tuned run's grown list appends new characters); {@code byte} ids are the bytes of UTF-8 text;
 * {@code bpe} ids index subword pieces (a text piece, a byte piece, or the unknown piece).
 */
public final class Vocab {
    public enum Kind { CHAR, BYTE, BPE }

    private final Kind kind;
    /** One code point per id (char kind only; null for byte). */
    private final String[] chars;
    private final Map<Integer, Integer> idOfCodePoint;
    /** bpe only: the id of each text piece, of each byte value's piece, and the bytes of every id. */
    private final Map<String, Integer> idOfPiece = new HashMap<String, Integer>();
    private final int[] idOfByte = new int[256];
    private final byte[][] pieceBytes;

    private Vocab(Kind kind, String[] chars) {
        this.kind = kind;
        this.chars = chars;
        this.pieceBytes = null;
        this.idOfCodePoint = new HashMap<Integer, Integer>();
        if (chars != null) {
            for (int id = 0; id < chars.length; id++) {
                idOfCodePoint.put(chars[id].codePointAt(0), id);
            }
        }
    }

    private Vocab(List<?> pieces) {
        this.kind = Kind.BPE;
        this.chars = null;
        this.idOfCodePoint = null;
        this.pieceBytes = new byte[pieces.size()][];
        Set<Long> bytesSeen = new HashSet<Long>();
        for (int id = 0; id < pieces.size(); id++) {
            Object piece = pieces.get(id);
            if (piece instanceof String && !((String) piece).isEmpty() && ((String) piece).indexOf('\n') < 0
                    && !idOfPiece.containsKey(piece)) {
                idOfPiece.put((String) piece, id);
                pieceBytes[id] = ((String) piece).getBytes(StandardCharsets.UTF_8);
            } else if (piece instanceof Long && (Long) piece >= 0 && (Long) piece < 256 && bytesSeen.add((Long) piece)) {
                idOfByte[((Long) piece).intValue()] = id;
                pieceBytes[id] = new byte[] {((Long) piece).byteValue()};
            } else if (piece == null) {
                pieceBytes[id] = new byte[0];
            } else {
                throw new IllegalArgumentException("bpe piece " + id + " must be a new non-empty string without a "
                        + "line feed, a new byte value 0-255 or null, got " + piece);
            }
        }
        if (bytesSeen.size() != 256) {
            throw new IllegalArgumentException("a bpe vocabulary needs 256 byte pieces, got " + bytesSeen.size());
        }
    }

    public static Vocab bytes() {
        return new Vocab(Kind.BYTE, null);
    }

    /** A bpe vocabulary: {@code pieces} holds Strings (text pieces), Longs (byte pieces) and nulls. */
    public static Vocab pieces(List<?> pieces) {
        return new Vocab(pieces);
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
        if ("bpe".equals(kind)) {
            if (!(object.get("pieces") instanceof List)) {
                throw new IllegalArgumentException("a bpe vocabulary must list its \"pieces\"");
            }
            vocab = pieces((List<?>) object.get("pieces"));
        } else if ("byte".equals(kind)) {
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
            throw new IllegalArgumentException("unknown vocabulary kind " + kind + ": use \"char\", \"byte\" or \"bpe\"");
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
        return kind == Kind.BYTE ? 256 : kind == Kind.BPE ? pieceBytes.length : chars.length;
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
        if (kind == Kind.BPE) {
            return encodePieces(text);
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

    /**
     * SPEC.md's BPE encoding, line by line (no text piece holds a line feed, which is a byte piece):
     * merge the adjacent pair whose concatenation is the text piece of smallest id (the leftmost on a
     * tie) until none is; then each symbol is its piece, or the byte pieces of its UTF-8 bytes.
     */
    private int[] encodePieces(String text) {
        List<Integer> ids = new ArrayList<Integer>();
        String[] lines = text.split("\n", -1);
        for (int line = 0; line < lines.length; line++) {
            if (line > 0) {
                ids.add(idOfByte['\n']);
            }
            List<String> symbols = new ArrayList<String>();
            for (int offset = 0; offset < lines[line].length(); ) {
                int codePoint = lines[line].codePointAt(offset);
                symbols.add(new String(Character.toChars(codePoint)));
                offset += Character.charCount(codePoint);
            }
            while (true) {
                int best = -1;
                int bestId = Integer.MAX_VALUE;
                for (int i = 0; i + 1 < symbols.size(); i++) {
                    Integer id = idOfPiece.get(symbols.get(i) + symbols.get(i + 1));
                    if (id != null && id < bestId) {
                        best = i;
                        bestId = id;
                    }
                }
                if (best < 0) {
                    break;
                }
                symbols.set(best, symbols.get(best) + symbols.remove(best + 1));
            }
            for (String symbol : symbols) {
                Integer id = idOfPiece.get(symbol);
                if (id != null) {
                    ids.add(id);
                } else {
                    for (byte b : symbol.getBytes(StandardCharsets.UTF_8)) {
                        ids.add(idOfByte[b & 0xFF]);
                    }
                }
            }
        }
        int[] out = new int[ids.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = ids.get(i);
        }
        return out;
    }

    /** A fresh decoder for one stream of generated ids (byte and bpe mode keep partial UTF-8 sequences in it). */
    public TokenDecoder newDecoder() {
        if (kind == Kind.BYTE) {
            return new Utf8StreamDecoder();
        }
        if (kind == Kind.BPE) {
            final Utf8StreamDecoder bytes = new Utf8StreamDecoder();
            return new TokenDecoder() {
                @Override
                public String decode(int id) {
                    StringBuilder text = new StringBuilder();
                    for (byte b : pieceBytes[id]) {
                        text.append(bytes.decode(b & 0xFF));
                    }
                    return text.toString();
                }
            };
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
