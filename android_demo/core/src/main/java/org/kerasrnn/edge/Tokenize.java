package org.kerasrnn.edge;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;

/**
 * Encodes a UTF-8 text file with a vocabulary and decodes the ids again: the Java half of
 * tests/test_subword.py's round trips, which compares the ids with Python's and the text with the file.
 *
 * <p>Usage: {@code Tokenize VOCAB.json TEXT OUT}: VOCAB.json is a manifest's {@code "vocab"}; prints
 * the ids of TEXT, one a line, and writes the text decoded from them to OUT (UTF-8).
 */
public final class Tokenize {
    private Tokenize() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 3) {
            System.err.println("usage: Tokenize VOCAB.json TEXT OUT");
            System.exit(2);
        }
        Vocab vocab = Vocab.fromJson(Json.parse(new String(Files.readAllBytes(Paths.get(args[0])),
                StandardCharsets.UTF_8)));
        int[] ids = vocab.encode(new String(Files.readAllBytes(Paths.get(args[1])), StandardCharsets.UTF_8));
        TokenDecoder decoder = vocab.newDecoder();
        StringBuilder lines = new StringBuilder();
        StringBuilder text = new StringBuilder();
        for (int id : ids) {
            lines.append(id).append('\n');
            text.append(decoder.decode(id));
        }
        Files.write(Paths.get(args[2]), text.toString().getBytes(StandardCharsets.UTF_8));
        PrintStream out = new PrintStream(System.out, false, "UTF-8");
        out.print(lines);
        out.flush();
    }
}
