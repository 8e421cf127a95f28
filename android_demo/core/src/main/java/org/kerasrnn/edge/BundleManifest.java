package org.kerasrnn.edge;

import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A bundle's manifest.json (format_version 1, sampling_contract 2): the vocabulary, the recurrent
 * state tensors in order, the start token and start state that every text begins from, and the
 * TFLite files with their "step" signatures. {@link #parse} checks everything the sampler relies
 * on, so that a wrong or stale bundle fails at load time with a clear message rather than with a
 * tensor error in the middle of generation.
 */
public final class BundleManifest {
    public static final String FORMAT = "kerasrnn-bundle";
    public static final int SUPPORTED_FORMAT_VERSION = 1;
    /**
     * The sampling contract this sampler implements (export/SPEC.md): contract 2 starts every text
     * from the manifest's {@code "start"} state and feeds its start token before the prime.
     */
    public static final int SUPPORTED_SAMPLING_CONTRACT = 2;
    /** The signature that feeds one token and returns the logits and the next state. */
    public static final String STEP_SIGNATURE = "step";

    public final Vocab vocab;
    /**
     * "lstm", "gru" or "rnn"; "gpt": a transformer, its states its cache (SPEC.md, "Transformer step models");
     * another model family's {@code "type"}, whose state is what {@code "state"} lists.
     */
    public final String cell;
    /** The model's layers; 0 for a model of another family that does not say. */
    public final int numLayers;
    /** In the order the manifest lists them. */
    public final List<StateSpec> states;
    /** {@code "start.token"}: the token id fed after every reset, before the prime (0 <= id < vocabulary size). */
    public final int startToken;
    /** {@code "start.state"}: each state's start values, by state name; never handed out (see {@link #startState}). */
    private final Map<String, float[]> startState;
    /** The TFLite "step" files of {@code "files"} (batch 1), one per precision. */
    public final List<ModelFile> tfliteFiles;
    /**
     * The optional {@code "batch_files"} (export/SPEC.md, "Batch models"): TFLite "step" signatures at a
     * fixed batch B, B streams per run (state tensors [B, H]); empty when the bundle has none.
     */
    public final List<ModelFile> tfliteBatchFiles;

    private BundleManifest(Vocab vocab, String cell, int numLayers, List<StateSpec> states, int startToken,
                           Map<String, float[]> startState, List<ModelFile> tfliteFiles,
                           List<ModelFile> tfliteBatchFiles) {
        this.vocab = vocab;
        this.cell = cell;
        this.numLayers = numLayers;
        this.states = Collections.unmodifiableList(states);
        this.startToken = startToken;
        this.startState = startState;
        this.tfliteFiles = Collections.unmodifiableList(tfliteFiles);
        this.tfliteBatchFiles = Collections.unmodifiableList(tfliteBatchFiles);
    }

    /** The manifest's file name in a bundle, which every message about it names. */
    public static final String MANIFEST = "manifest.json";

    /**
     * Reads and checks a manifest, against itself (the vocabulary, the state the model implies, the start,
     * every TFLite entry's tensors); a {@link ManifestException} says in one line what is wrong with it, naming
     * manifest.json and the field, and what to do. {@link ModelFile#checkTensors} checks a model file's own.
     */
    public static BundleManifest parse(String json) {
        try {
            return read(json);
        } catch (ManifestException e) {
            String message = e.getMessage();
            boolean saysWhatToDo = message.contains("kerasrnn") || message.contains("update the sampler");
            throw new ManifestException((message.startsWith(MANIFEST) ? "" : MANIFEST + ": ") + message
                    + (saysWhatToDo ? "" : ": export the bundle again (kerasrnn export)"));
        }
    }

    private static BundleManifest read(String json) {
        Object root;
        try {
            root = Json.parse(json);
        } catch (IllegalArgumentException e) {
            throw new ManifestException(MANIFEST + " is not valid JSON (" + e.getMessage() + "): the bundle is "
                    + "corrupt, export it again (kerasrnn export)");
        }
        Map<?, ?> manifest = object(root, "the manifest");
        Object format = manifest.get("format");
        if (!FORMAT.equals(format)) {
            throw new ManifestException("not a kerasrnn bundle: \"format\" is " + show(format) + ", expected \""
                    + FORMAT + "\"");
        }
        int version = integer(manifest, "format_version", "the manifest");
        if (version != SUPPORTED_FORMAT_VERSION) {
            throw new ManifestException("bundle format_version " + version + " is not supported: this sampler "
                    + "reads format_version " + SUPPORTED_FORMAT_VERSION
                    + "; export the bundle with a kerasrnn that writes it, or update the sampler");
        }
        int contract = integer(manifest, "sampling_contract", "the manifest");
        if (contract != SUPPORTED_SAMPLING_CONTRACT) {
            throw new ManifestException("sampling_contract " + contract + " is not supported: this sampler "
                    + "implements contract " + SUPPORTED_SAMPLING_CONTRACT + "; "
                    + (contract < SUPPORTED_SAMPLING_CONTRACT
                            ? "export the bundle again with a current kerasrnn"
                            : "update the sampler"));
        }
        Vocab vocab;
        try {
            vocab = Vocab.fromJson(manifest.get("vocab"));
        } catch (IllegalArgumentException e) {
            throw new ManifestException("the vocabulary is malformed: " + e.getMessage());
        }
        Map<?, ?> model = object(manifest.get("model"), "\"model\"");
        boolean known = !model.containsKey("type") || "gpt".equals(model.get("type"));  // an RNN's or a GPT's
        String cell = known ? ("gpt".equals(model.get("type")) ? "gpt" : string(model, "cell", "\"model\""))
                : string(model, "type", "\"model\"");
        int layers = known || model.containsKey("num_layers") ? integer(model, "num_layers", "\"model\"") : 0;
        List<StateSpec> states = states(manifest.get("state"));
        if (known) {
            if (!cell.equals("lstm") && !cell.equals("gru") && !cell.equals("rnn") && !cell.equals("gpt")) {
                throw new ManifestException("unknown cell \"" + cell + "\": expected lstm, gru or rnn");
            }
            if (layers < 1) {
                throw new ManifestException("\"model.num_layers\" must be >= 1, got " + layers);
            }
            // a GPT: each layer's keys and values, then the slots filled
            int expectedStates = cell.equals("gpt") ? 2 * layers + 1 : layers * (cell.equals("lstm") ? 2 : 1);
            if (states.size() != expectedStates) {
                throw new ManifestException("a " + layers + "-layer " + cell + " has " + expectedStates
                        + " state tensors, but the manifest lists " + states.size());
            }
            checkStatesOfModel(model, cell, layers, states);
        }
        if (!manifest.containsKey("start")) {
            throw new ManifestException("the manifest has no \"start\" (the start token and state of sampling "
                    + "contract " + SUPPORTED_SAMPLING_CONTRACT + "): export the bundle again with a current kerasrnn");
        }
        Map<?, ?> start = object(manifest.get("start"), "\"start\"");
        int startToken = integer(start, "token", "\"start\"");
        if (startToken < 0 || startToken >= vocab.size()) {
            throw new ManifestException("\"start.token\" is " + startToken + ", not a token id of the "
                    + vocab.size() + "-token vocabulary (0 to " + (vocab.size() - 1) + ")");
        }
        Map<String, float[]> startState = startState(start.get("state"), states);
        // Every entry is checked against the state and vocabulary; the TFLite "step" ones are for sampling
        // here, the others (ONNX files, with their many-token "steps" signature) for other runtimes.
        List<ModelFile> tfliteFiles = new ArrayList<ModelFile>();
        for (Object entry : list(manifest.get("files"), "\"files\"")) {
            Map<?, ?> file = object(entry, "each entry of \"files\"");
            checkInside(string(file, "path", "each entry of \"files\""));
            ModelFile described = modelFile(file, vocab, states, false);
            if (described.format.equals("tflite") && described.signature.equals(STEP_SIGNATURE)) {
                tfliteFiles.add(described);
            }
        }
        List<ModelFile> tfliteBatchFiles = new ArrayList<ModelFile>();
        if (manifest.containsKey("batch_files")) {
            for (Object entry : list(manifest.get("batch_files"), "\"batch_files\"")) {
                Map<?, ?> file = object(entry, "each entry of \"batch_files\"");
                checkInside(string(file, "path", "each entry of \"batch_files\""));
                ModelFile described = modelFile(file, vocab, states, true);
                if (described.format.equals("tflite") && described.signature.equals(STEP_SIGNATURE)) {
                    tfliteBatchFiles.add(described);
                }
            }
        }
        if (tfliteFiles.isEmpty()) {
            throw new ManifestException("the bundle has no tflite file with a \"" + STEP_SIGNATURE
                    + "\" signature; export it with the tflite format");
        }
        return new BundleManifest(vocab, cell, layers, states, startToken, startState, tfliteFiles,
                tfliteBatchFiles);
    }

    /**
     * A copy of the start values of the state named {@code name} (one of {@link #states}): its
     * {@code size} floats, all finite. Each call returns a new array, which the caller may change.
     */
    public float[] startState(String name) {
        float[] values = startState.get(name);
        if (values == null) {
            throw new IllegalArgumentException("the manifest has no state \"" + name + "\"");
        }
        return values.clone();
    }

    /** The TFLite file of the given precision ("fp32" or "int8"), described by its "step" signature. */
    public ModelFile tfliteFile(String precision) {
        List<String> available = new ArrayList<String>();
        for (ModelFile file : tfliteFiles) {
            if (file.precision.equals(precision)) {
                return file;
            }
            available.add(file.precision);
        }
        throw new ManifestException("the bundle has no " + precision + " tflite file; it has " + available);
    }

    /**
     * The file {@code path} (as the manifest names it) of the bundle in the folder {@code bundleDir}, which it
     * must not leave: no absolute path, no "..", no symbolic link leading out.
     */
    public static File fileIn(File bundleDir, String path) throws IOException {
        checkInside(path);
        File dir = bundleDir.getCanonicalFile();
        File file = new File(dir, path).getCanonicalFile();
        if (!file.getPath().startsWith(dir.getPath() + File.separator)) {
            throw new ManifestException("\"" + path + "\" leads outside the bundle folder " + dir
                    + " (through a symbolic link): use a bundle made by kerasrnn export");
        }
        return file;
    }

    /** A path the manifest names stays inside the bundle folder: relative, and without "..". */
    private static void checkInside(String path) {
        boolean absolute = path.startsWith("/") || path.startsWith("\\") || path.matches("^[A-Za-z]:.*");
        if (absolute || path.isEmpty() || Arrays.asList(path.split("[/\\\\]")).contains("..")) {
            throw new ManifestException("\"" + path + "\" leads outside the bundle folder: a bundle names its "
                    + "files by relative paths inside it; use a bundle made by kerasrnn export");
        }
    }

    private static List<StateSpec> states(Object json) {
        List<StateSpec> states = new ArrayList<StateSpec>();
        Set<String> names = new LinkedHashSet<String>();
        for (Object entry : list(json, "\"state\"")) {
            Map<?, ?> state = object(entry, "each entry of \"state\"");
            String name = string(state, "name", "a state entry");
            String where = "state \"" + name + "\"";
            TensorSpec spec = tensor(state, where);
            if (spec.shape.length != 2 || spec.shape[0] != 1 || spec.shape[1] < 1 || !spec.dtype.equals("float32")) {
                throw new ManifestException(where + " must be float32[1, H], got " + spec);
            }
            if (!names.add(name)) {
                throw new ManifestException("state \"" + name + "\" is listed twice");
            }
            states.add(new StateSpec(name, spec.shape[1]));
        }
        if (states.isEmpty()) {
            throw new ManifestException("the manifest lists no state tensors under \"state\"");
        }
        return states;
    }

    /**
     * The state names and widths the model implies: {@code layer{i}_h} (and {@code _c} for an LSTM) of
     * {@code rnn_size}; a GPT's {@code layer{i}_k}, {@code layer{i}_v} of context * width, then {@code filled}
     * of context (export/SPEC.md, "Transformer step models").
     */
    private static void checkStatesOfModel(Map<?, ?> model, String cell, int layers, List<StateSpec> states) {
        Map<String, Integer> expected = new LinkedHashMap<String, Integer>();
        String implied;
        if (cell.equals("gpt")) {
            int context = integer(model, "context", "\"model\"");
            int width = integer(model, "width", "\"model\"");
            for (int i = 0; i < layers; i++) {
                expected.put("layer" + i + "_k", context * width);
                expected.put("layer" + i + "_v", context * width);
            }
            expected.put("filled", context);
            implied = "a " + layers + "-layer gpt of context " + context + " and width " + width;
        } else {
            int size = integer(model, "rnn_size", "\"model\"");
            for (int i = 0; i < layers; i++) {
                expected.put("layer" + i + "_h", size);
                if (cell.equals("lstm")) {
                    expected.put("layer" + i + "_c", size);
                }
            }
            implied = "a " + layers + "-layer " + cell + " of size " + size;
        }
        List<String> names = new ArrayList<String>();
        for (StateSpec state : states) {
            names.add(state.name);
        }
        if (!names.equals(new ArrayList<String>(expected.keySet()))) {
            throw new ManifestException("\"state\" lists " + names + ", but \"model\" (" + implied + ") has "
                    + expected.keySet());
        }
        for (StateSpec state : states) {
            if (state.size != expected.get(state.name)) {
                throw new ManifestException("state \"" + state.name + "\" is " + state.size + " wide, but \"model\" ("
                        + implied + ") implies " + expected.get(state.name));
            }
        }
    }

    /**
     * {@code "start.state"}: one array of H numbers per state tensor, by name. Names the manifest's
     * "state" does not list are ignored, as the Python reader does.
     */
    private static Map<String, float[]> startState(Object json, List<StateSpec> states) {
        Map<?, ?> byName = object(json, "\"start.state\"");
        Map<String, float[]> startState = new LinkedHashMap<String, float[]>();
        for (StateSpec state : states) {
            String where = "\"start.state." + state.name + "\"";
            if (!byName.containsKey(state.name)) {
                throw new ManifestException("\"start.state\" has no \"" + state.name + "\"; it has "
                        + byName.keySet());
            }
            List<Object> numbers = list(byName.get(state.name), where);
            if (numbers.size() != state.size) {
                throw new ManifestException(where + " has " + numbers.size() + " values, expected " + state.size
                        + " (the size of state \"" + state.name + "\")");
            }
            float[] values = new float[state.size];
            for (int i = 0; i < values.length; i++) {
                Object number = numbers.get(i);
                if (!(number instanceof Long) && !(number instanceof Double)) {
                    throw new ManifestException(where + " must hold numbers, got " + show(number) + " at index " + i);
                }
                // As float32, like the model's state tensors: a double beyond float range is not finite.
                values[i] = ((Number) number).floatValue();
                if (Float.isNaN(values[i]) || Float.isInfinite(values[i])) {
                    throw new ManifestException(where + " value " + i + " (" + number + ") is not a finite float32");
                }
            }
            startState.put(state.name, values);
        }
        return Collections.unmodifiableMap(startState);
    }

    /**
     * A "files" entry (batch 1) or a "batch_files" entry (batch B >= 1, or -1 for an ONNX graph of any
     * batch), checked against the vocabulary and state (export/SPEC.md, "Tensors"): token [B] ("step"),
     * [-1] ("steps"), [B, -1] (an ONNX batch graph); every state and next_ state [B, H]; logits [B, V].
     */
    private static ModelFile modelFile(Map<?, ?> file, Vocab vocab, List<StateSpec> states, boolean batchFile) {
        String path = string(file, "path", "a file entry");
        String format = string(file, "format", "file \"" + path + "\"");
        String signature = string(file, "signature", "file \"" + path + "\"");
        String where = format + " file \"" + path + "\"" + (signature.equals(STEP_SIGNATURE) ? ""
                : " (signature \"" + signature + "\")");
        String precision = string(file, "precision", where);
        int batch = integer(file, "batch", where);
        if (batchFile ? batch < 1 && batch != -1 : batch != 1) {
            throw new ManifestException(where + " has batch " + batch + "; " + (batchFile
                    ? "a batch model runs a batch >= 1 (or -1: any)" : "the sampler runs batch 1"));
        }
        Map<String, TensorSpec> inputs = tensors(file.get("inputs"), where + " inputs");
        Map<String, TensorSpec> outputs = tensors(file.get("outputs"), where + " outputs");
        Map<String, TensorSpec> expectedInputs = new LinkedHashMap<String, TensorSpec>();
        Map<String, TensorSpec> expectedOutputs = new LinkedHashMap<String, TensorSpec>();
        int[] token = format.equals("onnx") && batchFile ? new int[] {batch, -1}
                : signature.equals(STEP_SIGNATURE) ? new int[] {batch} : new int[] {-1};
        expectedInputs.put("token", new TensorSpec(token, "int32"));
        expectedOutputs.put("logits", new TensorSpec(new int[] {batch, vocab.size()}, "float32"));
        for (StateSpec state : states) {
            TensorSpec spec = new TensorSpec(new int[] {batch, state.size}, "float32");
            expectedInputs.put(state.name, spec);
            expectedOutputs.put(state.nextName(), spec);
        }
        checkSignature(where + " inputs", inputs, expectedInputs);
        checkSignature(where + " outputs", outputs, expectedOutputs);
        long bytes = integer(file, "bytes", where);
        return new ModelFile(path, format, precision, signature, batch, inputs, outputs, bytes);
    }

    private static void checkSignature(String where, Map<String, TensorSpec> actual,
                                       Map<String, TensorSpec> expected) {
        if (!actual.keySet().equals(expected.keySet())) {
            throw new ManifestException(where + " are " + actual.keySet() + ", expected " + expected.keySet());
        }
        for (Map.Entry<String, TensorSpec> entry : expected.entrySet()) {
            TensorSpec want = entry.getValue();
            TensorSpec got = actual.get(entry.getKey());
            if (!got.is(want.dtype, want.shape)) {
                throw new ManifestException(where + ": \"" + entry.getKey() + "\" is " + got + ", expected " + want);
            }
        }
    }

    private static Map<String, TensorSpec> tensors(Object json, String where) {
        Map<String, TensorSpec> tensors = new LinkedHashMap<String, TensorSpec>();
        for (Map.Entry<?, ?> entry : object(json, where).entrySet()) {
            String name = (String) entry.getKey();
            tensors.put(name, tensor(object(entry.getValue(), where + " \"" + name + "\""), where + " \"" + name + "\""));
        }
        return tensors;
    }

    private static TensorSpec tensor(Map<?, ?> json, String where) {
        List<Object> dims = list(json.get("shape"), where + " \"shape\"");
        int[] shape = new int[dims.size()];
        for (int i = 0; i < shape.length; i++) {
            Object dim = dims.get(i);
            if (!(dim instanceof Long) || (Long) dim < -1 || (Long) dim > Integer.MAX_VALUE) {
                throw new ManifestException(where + " \"shape\" must hold sizes (-1: any), got " + show(dim));
            }
            shape[i] = (int) (long) (Long) dim;
        }
        return new TensorSpec(shape, string(json, "dtype", where));
    }

    private static Map<?, ?> object(Object json, String what) {
        if (!(json instanceof Map)) {
            throw new ManifestException(what + " must be a JSON object, got " + show(json));
        }
        return (Map<?, ?>) json;
    }

    @SuppressWarnings("unchecked")
    private static List<Object> list(Object json, String what) {
        if (!(json instanceof List)) {
            throw new ManifestException(what + " must be a JSON array, got " + show(json));
        }
        return (List<Object>) json;
    }

    private static String string(Map<?, ?> object, String key, String where) {
        Object value = object.get(key);
        if (!(value instanceof String)) {
            throw new ManifestException(where + " needs a string \"" + key + "\", got " + show(value));
        }
        return (String) value;
    }

    private static int integer(Map<?, ?> object, String key, String where) {
        Object value = object.get(key);
        if (!(value instanceof Long) || (Long) value < Integer.MIN_VALUE || (Long) value > Integer.MAX_VALUE) {
            throw new ManifestException(where + " needs an integer \"" + key + "\", got " + show(value));
        }
        return (int) (long) (Long) value;
    }

    private static String show(Object json) {
        if (json == null) {
            return "nothing";
        }
        if (json instanceof String) {
            return "\"" + json + "\"";
        }
        if (json instanceof Map) {
            return "an object";
        }
        if (json instanceof List) {
            return "an array";
        }
        return String.valueOf(json);
    }
}
