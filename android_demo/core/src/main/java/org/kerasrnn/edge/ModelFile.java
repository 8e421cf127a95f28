package org.kerasrnn.edge;

import java.util.Collections;
import java.util.Map;
import java.util.TreeSet;

/** One model file entry of a bundle, checked against the manifest's state and vocabulary. */
public final class ModelFile {
    /** Relative to the bundle directory (in the app: the assets' {@code bundle/} folder). */
    public final String path;
    /** "tflite" or "onnx". */
    public final String format;
    /** "fp32" or "int8". */
    public final String precision;
    /** The signature key: {@link BundleManifest#STEP_SIGNATURE} for every file the sampler runs; "steps" (ONNX). */
    public final String signature;
    /** Streams per run: 1, or B for a file of the manifest's "batch_files" (inputs and states [B, ...]). */
    public final int batch;
    public final Map<String, TensorSpec> inputs;
    public final Map<String, TensorSpec> outputs;
    /** The file's size, to catch a model file that does not belong to this manifest. */
    public final long bytes;

    /**
     * The model file's own {@link #signature}, as the file declares it ({@link TfliteSignature}), against the
     * manifest's entry: a file that is not the one the manifest describes (an edited manifest, another
     * export's file) is refused in one line naming the file and the tensor, before its first step.
     */
    public void checkTensors(Map<String, TensorSpec> fileInputs, Map<String, TensorSpec> fileOutputs) {
        check("inputs", fileInputs, inputs);
        check("outputs", fileOutputs, outputs);
    }

    private void check(String side, Map<String, TensorSpec> file, Map<String, TensorSpec> manifest) {
        String where = path + " (signature \"" + signature + "\")";
        if (!file.keySet().equals(manifest.keySet())) {
            throw new ManifestException(where + " has " + side + " " + new TreeSet<String>(file.keySet())
                    + ", but " + BundleManifest.MANIFEST + " lists " + new TreeSet<String>(manifest.keySet())
                    + ": the bundle is inconsistent, export it again (kerasrnn export)");
        }
        for (Map.Entry<String, TensorSpec> entry : manifest.entrySet()) {
            TensorSpec want = entry.getValue();
            TensorSpec got = file.get(entry.getKey());
            if (!got.is(want.dtype, want.shape)) {
                throw new ManifestException(where + ": its " + side.substring(0, side.length() - 1) + " \""
                        + entry.getKey() + "\" is " + got + ", but " + BundleManifest.MANIFEST + " says " + want
                        + ": the bundle is inconsistent, export it again (kerasrnn export)");
            }
        }
    }

    ModelFile(String path, String format, String precision, String signature, int batch,
              Map<String, TensorSpec> inputs, Map<String, TensorSpec> outputs, long bytes) {
        this.path = path;
        this.format = format;
        this.precision = precision;
        this.signature = signature;
        this.batch = batch;
        this.inputs = Collections.unmodifiableMap(inputs);
        this.outputs = Collections.unmodifiableMap(outputs);
        this.bytes = bytes;
    }
}
