package org.kerasrnn.demo;

import android.content.res.AssetFileDescriptor;
import android.content.res.AssetManager;

import org.kerasrnn.edge.BundleManifest;
import org.kerasrnn.edge.ModelFile;
import org.kerasrnn.edge.SignatureStepModel;
import org.kerasrnn.edge.StepModel;
import org.kerasrnn.edge.TfliteSignature;
import org.tensorflow.lite.Interpreter;

import java.io.Closeable;
import java.io.FileInputStream;
import java.io.IOException;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;

/**
 * A bundle's TFLite model run by LiteRT through its "step" signature. The state buffers and the
 * tensor names come from the manifest and live in the core's {@link SignatureStepModel}; this
 * class only owns the interpreter. Like the interpreter, it must be used from one thread at a time.
 */
final class LiteRtStepModel implements StepModel, Closeable {
    private final Interpreter interpreter;
    private final SignatureStepModel steps;

    private LiteRtStepModel(Interpreter interpreter, BundleManifest manifest, final String signature) {
        this.interpreter = interpreter;
        this.steps = new SignatureStepModel(manifest,
                (inputs, outputs) -> interpreter.runSignature(inputs, outputs, signature));
    }

    /** Loads {@code file} (one of {@code manifest}'s TFLite files) from the assets folder {@code bundleDir}. */
    static LiteRtStepModel fromAssets(AssetManager assets, String bundleDir, BundleManifest manifest,
                                      ModelFile file, int threads) throws IOException {
        MappedByteBuffer model = map(assets, bundleDir + "/" + file.path, file.bytes);
        // The file's own signature against the manifest's entry, before the interpreter runs it.
        TfliteSignature own = TfliteSignature.read(model, file.path, file.signature);
        file.checkTensors(own.inputs, own.outputs);
        Interpreter interpreter = new Interpreter(model, new Interpreter.Options().setNumThreads(threads));
        return new LiteRtStepModel(interpreter, manifest, file.signature);
    }

    /** Sets every state to the manifest's start state. */
    @Override
    public void reset() {
        steps.reset();
    }

    /** The manifest's start token, fed before the prime. */
    @Override
    public int startToken() {
        return steps.startToken();
    }

    @Override
    public float[] feed(int token) {
        return steps.feed(token);
    }

    @Override
    public void close() {
        interpreter.close();
    }

    /** Memory-maps an asset; it must be stored uncompressed (app/build.gradle: noCompress 'tflite'). */
    private static MappedByteBuffer map(AssetManager assets, String path, long expectedBytes) throws IOException {
        try (AssetFileDescriptor descriptor = assets.openFd(path);
             FileInputStream input = new FileInputStream(descriptor.getFileDescriptor())) {
            if (descriptor.getLength() != expectedBytes) {
                throw new IOException(path + " has " + descriptor.getLength() + " bytes but the manifest says "
                        + expectedBytes + ": install the whole bundle again with install_bundle.sh");
            }
            return input.getChannel().map(FileChannel.MapMode.READ_ONLY, descriptor.getStartOffset(),
                    descriptor.getDeclaredLength());
        }
    }
}
