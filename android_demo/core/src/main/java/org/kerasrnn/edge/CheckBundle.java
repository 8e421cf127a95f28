package org.kerasrnn.edge;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Checks a bundle folder as the app checks its copy before the first step, with no runtime: manifest.json
 * against itself ({@link BundleManifest#parse}), then each TFLite file it names: inside the folder, of the
 * manifest's size, its own signature ({@link TfliteSignature}) matching its entry ({@link ModelFile#checkTensors}).
 * Prints one line: what the bundle holds, or what is wrong with it (exit 2).
 *
 * <p>Usage: {@code CheckBundle BUNDLE_DIR}
 */
public final class CheckBundle {
    private CheckBundle() {
    }

    public static void main(String[] args) {
        if (args.length != 1) {
            System.err.println("usage: CheckBundle BUNDLE_DIR");
            System.exit(2);
        }
        File dir = new File(args[0]);
        try {
            System.out.println(check(dir));
        } catch (ManifestException e) {
            System.err.println("error: " + dir + ": " + e.getMessage());
            System.exit(2);
        } catch (IOException e) {
            System.err.println("error: " + dir + ": cannot read " + e.getMessage() + " (" + e.getClass().getSimpleName()
                    + "): pass a bundle folder made by kerasrnn export");
            System.exit(2);
        }
    }

    static String check(File dir) throws IOException {
        BundleManifest manifest = BundleManifest.parse(new String(
                Files.readAllBytes(new File(dir, BundleManifest.MANIFEST).toPath()), StandardCharsets.UTF_8));
        List<ModelFile> files = new ArrayList<ModelFile>(manifest.tfliteFiles);
        files.addAll(manifest.tfliteBatchFiles);
        for (ModelFile file : files) {
            File model = BundleManifest.fileIn(dir, file.path);
            if (!model.isFile() || model.length() != file.bytes) {
                throw new ManifestException(file.path + (model.isFile() ? " has " + model.length() + " bytes, not "
                        + file.bytes + " as " + BundleManifest.MANIFEST + " says" : " is missing")
                        + ": the bundle is incomplete or corrupt, export it again (kerasrnn export)");
            }
            TfliteSignature own = TfliteSignature.read(ByteBuffer.wrap(Files.readAllBytes(model.toPath())),
                    file.path, file.signature);
            file.checkTensors(own.inputs, own.outputs);
        }
        return "ok: a " + manifest.numLayers + "-layer " + manifest.cell + ", " + manifest.vocab.size() + " "
                + manifest.vocab.kind().name().toLowerCase(Locale.ROOT) + " tokens, " + files.size()
                + " TFLite files whose signatures match manifest.json";
    }
}
