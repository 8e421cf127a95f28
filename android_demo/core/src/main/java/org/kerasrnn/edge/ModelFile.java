package org.kerasrnn.edge;

import java.util.Collections;
import java.util.Map;

/** One TFLite model of a bundle; its "step" signature has been checked against the manifest's state and vocabulary. */
public final class ModelFile {
    /** Relative to the bundle directory (in the app: the assets' {@code bundle/} folder). */
    public final String path;
    /** "fp32" or "int8". */
    public final String precision;
    /** The signature key to run: {@link BundleManifest#STEP_SIGNATURE}. */
    public final String signature;
    /** Streams per run: 1, or B for a file of the manifest's "batch_files" (inputs and states [B, ...]). */
    public final int batch;
    public final Map<String, TensorSpec> inputs;
    public final Map<String, TensorSpec> outputs;
    /** The file's size, to catch a model file that does not belong to this manifest. */
    public final long bytes;

    ModelFile(String path, String precision, String signature, int batch, Map<String, TensorSpec> inputs,
              Map<String, TensorSpec> outputs, long bytes) {
        this.path = path;
        this.precision = precision;
        this.signature = signature;
        this.batch = batch;
        this.inputs = Collections.unmodifiableMap(inputs);
        this.outputs = Collections.unmodifiableMap(outputs);
        this.bytes = bytes;
    }
}
