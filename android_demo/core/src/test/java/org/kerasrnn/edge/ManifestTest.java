package org.kerasrnn.edge;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import org.junit.Test;

public class ManifestTest {
    /** Test JSON is written with single quotes for readability; this makes it JSON. */
    private static String json(String singleQuoted) {
        return singleQuoted.replace('\'', '"');
    }

    private static String tensor(String dtype, int... shape) {
        StringBuilder dims = new StringBuilder();
        for (int dim : shape) {
            dims.append(dims.length() == 0 ? "" : ", ").append(dim);
        }
        return "{'shape': [" + dims + "], 'dtype': '" + dtype + "'}";
    }

    /** A "files" entry as the exporter writes it; {@code tokens} is the token input's length (-1: any). */
    private static String modelFile(String path, String format, String precision, String signature, int tokens) {
        return modelFile(path, format, precision, signature, new int[] {tokens}, 1);
    }

    /** An entry at {@code batch} streams (a "batch_files" entry when batch is not 1), token input {@code token}. */
    private static String modelFile(String path, String format, String precision, String signature, int[] token,
                                    int batch) {
        String state = tensor("float32", batch, 3);
        return "{'path': '" + path + "', 'format': '" + format + "', 'precision': '" + precision + "',"
                + " 'batch': " + batch + ", 'signature': '" + signature + "',"
                + " 'inputs': {'token': " + tensor("int32", token) + ", 'layer0_h': " + state + ", 'layer0_c': " + state
                + ", 'layer1_h': " + state + ", 'layer1_c': " + state + "},"
                + " 'outputs': {'logits': " + tensor("float32", batch, 5) + ", 'next_layer0_h': " + state
                + ", 'next_layer0_c': " + state + ", 'next_layer1_h': " + state + ", 'next_layer1_c': " + state + "},"
                + " 'sha256': '00ff', 'bytes': 12345, 'min_runtime': {'tflite-runtime': '2.14.0'}}";
    }

    /**
     * The start token and state of VALID: numbers written as integers, fractions and with exponents.
     * SignatureStepModelTest relies on these values (layer1_c sums to 7).
     */
    static final String START = "'start': {'token': 2, 'state': {'layer0_h': [0.5, -1, 2], 'layer0_c': [1, 2, 3],"
            + " 'layer1_h': [-0.25, 0, 2.5e-1], 'layer1_c': [1, 2.0, 4E0]}}";

    /** A 2-layer LSTM over a 5-character vocabulary, as the exporter writes it ("steps": ONNX, any number of tokens). */
    private static final String VALID = json("{'format': 'kerasrnn-bundle', 'format_version': 1, 'sampling_contract': 2,"
            + " 'vocab': {'kind': 'char', 'size': 5, 'chars': ['\\n', ' ', 'a', '\\u00e9', '\\ud83d\\ude00']},"
            + " 'model': {'cell': 'lstm', 'num_layers': 2, 'rnn_size': 3, 'embedding_size': 4},"
            + " 'state': [" + "{'name': 'layer0_h', 'shape': [1, 3], 'dtype': 'float32'},"
            + " {'name': 'layer0_c', 'shape': [1, 3], 'dtype': 'float32'},"
            + " {'name': 'layer1_h', 'shape': [1, 3], 'dtype': 'float32'},"
            + " {'name': 'layer1_c', 'shape': [1, 3], 'dtype': 'float32'}],"
            + " " + START + ","
            + " 'files': [" + modelFile("step_fp32.tflite", "tflite", "fp32", "step", 1) + ", "
            + modelFile("step_int8.tflite", "tflite", "int8", "step", 1) + ", "
            + modelFile("step.onnx", "onnx", "fp32", "step", 1) + ", "
            + modelFile("step.onnx", "onnx", "fp32", "steps", -1) + "],"
            + " 'source': {'config': {}, 'val_loss': 1.52}}");

    static BundleManifest validManifest() {
        return BundleManifest.parse(VALID);
    }

    private static void assertRejected(String manifest, String expectedMessagePart) {
        try {
            BundleManifest.parse(manifest);
            fail("accepted a manifest that should fail with: " + expectedMessagePart);
        } catch (ManifestException e) {
            assertTrue("message \"" + e.getMessage() + "\" lacks \"" + expectedMessagePart + "\"",
                    e.getMessage().contains(expectedMessagePart));
        }
    }

    /** VALID with one piece of text replaced, which must occur in it. */
    private static String validWith(String original, String replacement) {
        String from = json(original);
        assertTrue("VALID lacks " + from, VALID.contains(from));
        return VALID.replace(from, json(replacement));
    }

    @Test
    public void readsAValidManifest() {
        BundleManifest manifest = validManifest();
        assertEquals(Vocab.Kind.CHAR, manifest.vocab.kind());
        assertEquals(5, manifest.vocab.size());
        assertEquals("😀", manifest.vocab.newDecoder().decode(4));
        assertEquals("lstm", manifest.cell);
        assertEquals(2, manifest.numLayers);
        assertEquals(4, manifest.states.size());
        assertEquals("layer1_c", manifest.states.get(3).name);
        assertEquals("next_layer1_c", manifest.states.get(3).nextName());
        assertEquals(3, manifest.states.get(3).size);
        ModelFile int8 = manifest.tfliteFile("int8");
        assertEquals("step_int8.tflite", int8.path);
        assertEquals("step", int8.signature);
        assertEquals(12345, int8.bytes);
        assertEquals("step_fp32.tflite", manifest.tfliteFile("fp32").path);
    }

    /** The optional "batch_files" (export/SPEC.md, "Batch models"): TFLite step files at batch B; ONNX skipped. */
    @Test
    public void readsBatchFiles() {
        assertEquals(0, validManifest().tfliteBatchFiles.size());
        String batchFiles = " 'batch_files': [" + modelFile("step_b16_fp32.tflite", "tflite", "fp32", "step",
                new int[] {16}, 16) + ", " + modelFile("step_b16_int8.tflite", "tflite", "int8", "step", new int[] {16}, 16)
                + ", " + modelFile("step_batch.onnx", "onnx", "fp32", "steps", new int[] {-1, -1}, -1) + "],";
        BundleManifest manifest = BundleManifest.parse(validWith(json(" 'source':"), json(batchFiles + " 'source':")));
        assertEquals(2, manifest.tfliteBatchFiles.size());
        ModelFile file = manifest.tfliteBatchFiles.get(1);
        assertEquals("step_b16_int8.tflite", file.path);
        assertEquals(16, file.batch);
        assertArrayEquals(new int[] {16, 3}, file.inputs.get("layer1_c").shape);
        assertEquals(1, manifest.tfliteFile("int8").batch);
        String wrongShape = batchFiles.replace(tensor("int32", 16), tensor("int32", 1));
        assertRejected(validWith(json(" 'source':"), json(wrongShape + " 'source':")),
                "tflite file \"step_b16_fp32.tflite\" inputs: \"token\" is");
    }

    @Test
    public void readsTheStartTokenAndState() {
        BundleManifest manifest = validManifest();
        assertEquals(2, manifest.startToken);
        assertArrayEquals(new float[] {0.5f, -1, 2}, manifest.startState("layer0_h"), 0f);
        assertArrayEquals(new float[] {1, 2, 3}, manifest.startState("layer0_c"), 0f);
        assertArrayEquals(new float[] {-0.25f, 0, 0.25f}, manifest.startState("layer1_h"), 0f);
        assertArrayEquals(new float[] {1, 2, 4}, manifest.startState("layer1_c"), 0f);
        // Each call hands out a copy: changing it leaves the manifest's start state as it was.
        manifest.startState("layer0_h")[0] = 99;
        assertArrayEquals(new float[] {0.5f, -1, 2}, manifest.startState("layer0_h"), 0f);
        try {
            manifest.startState("layer2_h");
            fail("gave a start state for a state the manifest does not list");
        } catch (IllegalArgumentException e) {
            assertEquals("the manifest has no state \"layer2_h\"", e.getMessage());
        }
    }

    @Test
    public void readsAByteVocabularyGru() {
        String gru = VALID.replace(json("{'kind': 'char', 'size': 5, 'chars': ['\\n', ' ', 'a', '\\u00e9', '\\ud83d\\ude00']}"),
                json("{'kind': 'byte', 'size': 256}"))
                .replace(json("'cell': 'lstm'"), json("'cell': 'gru'"))
                .replace(json(", {'name': 'layer0_c', 'shape': [1, 3], 'dtype': 'float32'}"), "")
                .replace(json(", {'name': 'layer1_c', 'shape': [1, 3], 'dtype': 'float32'}"), "")
                .replace(json(", 'layer0_c': [1, 2, 3]"), "")
                .replace(json(", 'layer1_c': [1, 2.0, 4E0]"), "")
                .replace(json("'token': 2,"), json("'token': 200,"))
                .replace(json(", 'layer0_c': " + tensor("float32", 1, 3)), "")
                .replace(json(", 'layer1_c': " + tensor("float32", 1, 3)), "")
                .replace(json(", 'next_layer0_c': " + tensor("float32", 1, 3)), "")
                .replace(json(", 'next_layer1_c': " + tensor("float32", 1, 3)), "")
                .replace(json(tensor("float32", 1, 5)), json(tensor("float32", 1, 256)));
        BundleManifest manifest = BundleManifest.parse(gru);
        assertEquals(Vocab.Kind.BYTE, manifest.vocab.kind());
        assertEquals(2, manifest.states.size());
        assertEquals(2, manifest.tfliteFile("fp32").inputs.size() - 1);
        assertEquals(200, manifest.startToken);
        assertArrayEquals(new float[] {-0.25f, 0, 0.25f}, manifest.startState("layer1_h"), 0f);
    }

    @Test
    public void rejectsOtherFilesAndVersions() {
        assertRejected("{\"format\": ", "manifest.json is not valid JSON (invalid JSON at offset 11");
        assertRejected("[]", "the manifest must be a JSON object");
        assertRejected(validWith("'format': 'kerasrnn-bundle'", "'format': 'other'"),
                "not a kerasrnn bundle: \"format\" is \"other\", expected \"kerasrnn-bundle\"");
        assertRejected(validWith("'format_version': 1", "'format_version': 2"),
                "bundle format_version 2 is not supported: this sampler reads format_version 1");
        assertRejected(validWith("'format_version': 1", "'format_version': '1'"),
                "needs an integer \"format_version\", got \"1\"");
        assertRejected(validWith("'sampling_contract': 2", "'sampling_contract': 1"),
                "sampling_contract 1 is not supported: this sampler implements contract 2; "
                        + "export the bundle again with a current kerasrnn");
        assertRejected(validWith("'sampling_contract': 2", "'sampling_contract': 3"),
                "sampling_contract 3 is not supported: this sampler implements contract 2; update the sampler");
    }

    @Test
    public void rejectsAMissingOrMalformedStart() {
        assertRejected(validWith(" " + START + ",", ""),
                "the manifest has no \"start\" (the start token and state of sampling contract 2): "
                        + "export the bundle again with a current kerasrnn");
        assertRejected(validWith(START, "'start': [2]"), "\"start\" must be a JSON object, got an array");
        assertRejected(validWith("'token': 2, ", ""), "\"start\" needs an integer \"token\", got nothing");
        assertRejected(validWith("'token': 2,", "'token': 2.0,"), "\"start\" needs an integer \"token\", got 2.0");
        assertRejected(validWith("'token': 2,", "'token': 5,"),
                "\"start.token\" is 5, not a token id of the 5-token vocabulary (0 to 4)");
        assertRejected(validWith("'token': 2,", "'token': -1,"),
                "\"start.token\" is -1, not a token id of the 5-token vocabulary (0 to 4)");
        assertRejected(validWith("'state': {'layer0_h'", "'states': {'layer0_h'"),
                "\"start.state\" must be a JSON object, got nothing");
    }

    @Test
    public void rejectsAStartStateThatDoesNotMatchTheState() {
        assertRejected(validWith(", 'layer1_c': [1, 2.0, 4E0]", ""),
                "\"start.state\" has no \"layer1_c\"; it has [layer0_h, layer0_c, layer1_h]");
        assertRejected(validWith("'layer0_h': [0.5, -1, 2]", "'layer0_h': [0.5, -1]"),
                "\"start.state.layer0_h\" has 2 values, expected 3 (the size of state \"layer0_h\")");
        assertRejected(validWith("'layer0_c': [1, 2, 3]", "'layer0_c': [1, 2, 3, 4]"),
                "\"start.state.layer0_c\" has 4 values, expected 3");
        assertRejected(validWith("'layer0_h': [0.5, -1, 2]", "'layer0_h': 0.5"),
                "\"start.state.layer0_h\" must be a JSON array, got 0.5");
        assertRejected(validWith("'layer0_h': [0.5, -1, 2]", "'layer0_h': [0.5, '1', 2]"),
                "\"start.state.layer0_h\" must hold numbers, got \"1\" at index 1");
        assertRejected(validWith("'layer0_h': [0.5, -1, 2]", "'layer0_h': [0.5, null, 2]"),
                "\"start.state.layer0_h\" must hold numbers, got nothing at index 1");
        // JSON has no NaN or Infinity, but a number can overflow a double, or fit one and not a float32.
        assertRejected(validWith("'layer1_h': [-0.25, 0, 2.5e-1]", "'layer1_h': [-0.25, 0, 1e999]"),
                "\"start.state.layer1_h\" value 2 (Infinity) is not a finite float32");
        assertRejected(validWith("'layer1_h': [-0.25, 0, 2.5e-1]", "'layer1_h': [-0.25, -1e39, 0]"),
                "\"start.state.layer1_h\" value 1 (-1.0E39) is not a finite float32");
        // Names the manifest's "state" does not list are ignored, as the Python reader ignores them.
        assertEquals(2, BundleManifest.parse(validWith("'state': {'layer0_h'", "'state': {'layer9_h': [], 'layer0_h'"))
                .startToken);
    }

    @Test
    public void rejectsInconsistentVocabularies() {
        assertRejected(validWith("'size': 5", "'size': 6"), "\"vocab.size\" is 6 but the char vocabulary has 5 tokens");
        assertRejected(validWith("['\\n', ' ', 'a'", "['\\n', ' ', ' '"), "entry 2 (' ') repeats one");
        assertRejected(validWith("'a', '\\u00e9'", "'ab', '\\u00e9'"), "entry 2 must be exactly one character");
        assertRejected(validWith("'kind': 'char'", "'kind': 'word'"), "unknown vocabulary kind word");
        assertRejected(validWith("'kind': 'char'", "'kind': 'byte'"), "a byte vocabulary must not list \"chars\"");
        assertRejected(validWith(", 'chars': ['\\n', ' ', 'a', '\\u00e9', '\\ud83d\\ude00']", ""),
                "a char vocabulary must list its \"chars\"");
    }

    @Test
    public void rejectsMissingOrMismatchedState() {
        int states = VALID.indexOf("\"state\": [") + "\"state\": [".length();
        String noStates = VALID.substring(0, states) + VALID.substring(VALID.indexOf("], \"start\""));
        assertRejected(noStates, "the manifest lists no state tensors");
        assertRejected(validWith(", {'name': 'layer1_c', 'shape': [1, 3], 'dtype': 'float32'}", ""),
                "a 2-layer lstm has 4 state tensors, but the manifest lists 3");
        assertRejected(validWith("{'name': 'layer0_h', 'shape': [1, 3]", "{'name': 'layer0_h', 'shape': [3]"),
                "state \"layer0_h\" must be float32[1, H], got float32[3]");
        assertRejected(validWith("'cell': 'lstm'", "'cell': 'transformer'"), "unknown cell \"transformer\"");
    }

    @Test
    public void rejectsSignaturesThatDoNotMatchTheState() {
        assertRejected(validWith(", 'layer1_c': " + tensor("float32", 1, 3) + "}", "}"),
                "tflite file \"step_fp32.tflite\" inputs are [token, layer0_h, layer0_c, layer1_h], expected "
                        + "[token, layer0_h, layer0_c, layer1_h, layer1_c]");
        assertRejected(validWith("'logits': " + tensor("float32", 1, 5), "'logits': " + tensor("float32", 1, 6)),
                "tflite file \"step_fp32.tflite\" outputs: \"logits\" is float32[1, 6], expected float32[1, 5]");
        assertRejected(validWith("'token': " + tensor("int32", 1), "'token': " + tensor("int64", 1)),
                "\"token\" is int64[1], expected int32[1]");
        assertRejected(validWith("'batch': 1, 'signature': 'step'", "'batch': 8, 'signature': 'step'"),
                "has batch 8; the sampler runs batch 1");
        assertRejected(validWith("'token': " + tensor("int32", -1), "'token': " + tensor("int32", 8)),
                "onnx file \"step.onnx\" (signature \"steps\") inputs: \"token\" is int32[8], expected int32[-1]");
    }

    /** Every message names manifest.json and the field, and says what to do. */
    @Test
    public void rejectsStatesTheModelDoesNotImply() {
        assertRejected(validWith("'rnn_size': 3", "'rnn_size': 4"), "manifest.json: state \"layer0_h\" is 3 wide, "
                + "but \"model\" (a 2-layer lstm of size 4) implies 4: export the bundle again (kerasrnn export)");
        assertRejected(validWith("{'name': 'layer0_c'", "{'name': 'layer0_x'"),
                "\"state\" lists [layer0_h, layer0_x, layer1_h, layer1_c], but \"model\" (a 2-layer lstm of size 3) "
                        + "has [layer0_h, layer0_c, layer1_h, layer1_c]");
        String k = "{'name': 'layer0_k', 'shape': [1, 4], 'dtype': 'float32'}";
        String v = "{'name': 'layer0_v', 'shape': [1, 4], 'dtype': 'float32'}";
        String filled = "{'name': 'filled', 'shape': [1, 2], 'dtype': 'float32'}";
        assertRejected(gptManifest(k + ", " + v + ", " + filled).replace("\"context\": 2", "\"context\": 3"),
                "state \"layer0_k\" is 4 wide, but \"model\" (a 1-layer gpt of context 3 and width 2) implies 6");
    }

    /** A model file whose own signature (as LiteRT reports it) differs from its entry is refused. */
    @Test
    public void checksAModelFilesOwnTensorsAgainstItsEntry() {
        ModelFile file = validManifest().tfliteFile("fp32");
        Map<String, TensorSpec> inputs = new LinkedHashMap<String, TensorSpec>(file.inputs);
        Map<String, TensorSpec> outputs = new LinkedHashMap<String, TensorSpec>(file.outputs);
        file.checkTensors(inputs, outputs);
        outputs.put("logits", new TensorSpec(new int[] {1, 6}, "float32"));
        assertTensorsRejected(file, inputs, outputs, "step_fp32.tflite (signature \"step\"): its output \"logits\" is "
                + "float32[1, 6], but manifest.json says float32[1, 5]: the bundle is inconsistent, export it again");
        outputs.put("logits", file.outputs.get("logits"));
        inputs.remove("layer1_c");
        assertTensorsRejected(file, inputs, outputs, "step_fp32.tflite (signature \"step\") has inputs [layer0_c, "
                + "layer0_h, layer1_h, token], but manifest.json lists [layer0_c, layer0_h, layer1_c, layer1_h, token]");
    }

    private static void assertTensorsRejected(ModelFile file, Map<String, TensorSpec> inputs,
                                              Map<String, TensorSpec> outputs, String expected) {
        try {
            file.checkTensors(inputs, outputs);
            fail("accepted tensors that should fail with: " + expected);
        } catch (ManifestException e) {
            assertTrue("message \"" + e.getMessage() + "\" lacks \"" + expected + "\"", e.getMessage().contains(expected));
        }
    }

    @Test
    public void namesThePrecisionsABundleHas() {
        try {
            validManifest().tfliteFile("fp16");
            fail("found an fp16 file");
        } catch (ManifestException e) {
            assertEquals("the bundle has no fp16 tflite file; it has [fp32, int8]", e.getMessage());
        }
        assertRejected(VALID.replace("\"format\": \"tflite\"", "\"format\": \"onnx\""),
                "the bundle has no tflite file with a \"step\" signature");
    }

    @Test
    public void rejectsPathsLeadingOutOfTheBundle() {
        assertRejected(validWith("'path': 'step.onnx'", "'path': '/data/local/tmp/step.onnx'"),
                "\"/data/local/tmp/step.onnx\" leads outside the bundle folder");
        assertRejected(validWith("'path': 'step_fp32.tflite'", "'path': '../step_fp32.tflite'"),
                "\"../step_fp32.tflite\" leads outside the bundle folder");
        assertRejected(validWith("'path': 'step_int8.tflite'", "'path': 'models/../../step_int8.tflite'"),
                "leads outside the bundle folder");
    }

    @Test
    public void findsFilesInsideABundleFolderButNotThroughSymbolicLinksOut() throws IOException {
        Path root = Files.createTempDirectory("bundle-test");
        try {
            Path bundle = Files.createDirectory(root.resolve("bundle"));
            Path inside = Files.write(bundle.resolve("step_int8.tflite"), new byte[] {1, 2, 3});
            Path outside = Files.write(root.resolve("step_fp32.tflite"), new byte[] {1, 2, 3});
            Files.createSymbolicLink(bundle.resolve("step_fp32.tflite"), outside);
            assertEquals(inside.toFile().getCanonicalFile(), BundleManifest.fileIn(bundle.toFile(), "step_int8.tflite"));
            for (String path : new String[] {"step_fp32.tflite", "../step_fp32.tflite", outside.toString()}) {
                try {
                    BundleManifest.fileIn(bundle.toFile(), path);
                    fail("opened " + path + ", outside the bundle folder");
                } catch (ManifestException e) {
                    assertTrue(e.getMessage(), e.getMessage().contains("leads outside the bundle folder"));
                }
            }
        } finally {
            for (File file : new File[] {root.resolve("bundle/step_fp32.tflite").toFile(),
                    root.resolve("bundle/step_int8.tflite").toFile(), root.resolve("step_fp32.tflite").toFile(),
                    root.resolve("bundle").toFile(), root.toFile()}) {
                file.delete();
            }
        }
    }

    /** A 1-layer GPT, 2 wide with a context of 2 slots (SPEC.md, "Transformer step models"): its states, its cache. */
    private static String gptManifest(String states) {
        String slots = tensor("float32", 1, 4);
        String signature = " 'inputs': {'token': " + tensor("int32", 1) + ", 'layer0_k': " + slots + ", 'layer0_v': "
                + slots + ", 'filled': " + tensor("float32", 1, 2) + "},"
                + " 'outputs': {'logits': " + tensor("float32", 1, 5)
                + ", 'next_layer0_k': " + slots + ", 'next_layer0_v': " + slots + ", 'next_filled': "
                + tensor("float32", 1, 2) + "}";
        return json("{'format': 'kerasrnn-bundle', 'format_version': 1, 'sampling_contract': 2,"
                + " 'vocab': {'kind': 'char', 'size': 5, 'chars': ['\\n', ' ', 'a', 'b', 'c']},"
                + " 'model': {'type': 'gpt', 'num_layers': 1, 'num_heads': 1, 'width': 2, 'context': 2,"
                + " 'positions': 'alibi'},"
                + " 'state': [" + states + "],"
                + " 'start': {'token': 0, 'state': {'layer0_k': [0, 0, 0, 0], 'layer0_v': [0, 0, 0, 0],"
                + " 'filled': [0, 0]}},"
                + " 'files': [{'path': 'step_fp32.tflite', 'format': 'tflite', 'precision': 'fp32', 'batch': 1,"
                + " 'signature': 'step'," + signature + ", 'sha256': '00ff', 'bytes': 12, 'min_runtime': {}}]}");
    }

    @Test
    public void readsAGptManifestWhoseStatesAreItsCache() {
        String k = "{'name': 'layer0_k', 'shape': [1, 4], 'dtype': 'float32'}";
        String v = "{'name': 'layer0_v', 'shape': [1, 4], 'dtype': 'float32'}";
        String filled = "{'name': 'filled', 'shape': [1, 2], 'dtype': 'float32'}";
        BundleManifest manifest = BundleManifest.parse(gptManifest(k + ", " + v + ", " + filled));
        assertEquals("gpt", manifest.cell);
        assertEquals(3, manifest.states.size());
        assertEquals(4, manifest.states.get(1).size);
        assertEquals("next_filled", manifest.states.get(2).nextName());
        assertArrayEquals(new float[] {0, 0}, manifest.startState("filled"), 0f);
        assertRejected(gptManifest(k + ", " + v), "a 1-layer gpt has 3 state tensors, but the manifest lists 2");
    }

    @Test
    public void readsAManifestOfAnotherFamilyWhoseStateIsItsList() {
        String previous = tensor("float32", 1, 4);
        BundleManifest manifest = BundleManifest.parse(json("{'format': 'kerasrnn-bundle', 'format_version': 1,"
                + " 'sampling_contract': 2, 'vocab': {'kind': 'char', 'size': 5, 'chars': ['\\n', ' ', 'a', 'b', 'c']},"
                + " 'model': {'type': 'toy', 'embedding_size': 4},"
                + " 'state': [{'name': 'previous', 'shape': [1, 4], 'dtype': 'float32'}],"
                + " 'start': {'token': 0, 'state': {'previous': [0, 0, 0, 0]}},"
                + " 'files': [{'path': 'step_fp32.tflite', 'format': 'tflite', 'precision': 'fp32', 'batch': 1,"
                + " 'signature': 'step', 'inputs': {'token': " + tensor("int32", 1) + ", 'previous': " + previous
                + "}, 'outputs': {'logits': " + tensor("float32", 1, 5) + ", 'next_previous': " + previous + "},"
                + " 'sha256': '00ff', 'bytes': 12, 'min_runtime': {}}]}"));
        assertEquals("toy", manifest.cell);
        assertEquals(0, manifest.numLayers);
        assertEquals(1, manifest.states.size());
        assertEquals("next_previous", manifest.states.get(0).nextName());
    }
}
