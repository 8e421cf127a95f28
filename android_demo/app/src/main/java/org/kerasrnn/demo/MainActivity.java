package org.kerasrnn.demo;

import android.app.Activity;
import android.os.Bundle;
import android.os.Handler;
import android.os.Looper;
import android.os.SystemClock;
import android.view.View;
import android.widget.Button;
import android.widget.CheckBox;
import android.widget.EditText;
import android.widget.ScrollView;
import android.widget.TextView;

import org.kerasrnn.edge.BundleManifest;
import org.kerasrnn.edge.Generation;
import org.kerasrnn.edge.SamplingParams;

import java.io.ByteArrayOutputStream;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Generates text with the bundle in assets/bundle/ and streams it into a TextView.
 *
 * <p>Threading: the model is loaded and run on one worker thread (a LiteRT interpreter must not
 * be used from two threads at once); the UI thread only reads the form and shows what the worker
 * posts. Stop sets a flag that the worker checks between tokens, so it ends after the current step.
 */
public final class MainActivity extends Activity {
    private static final String BUNDLE_DIR = "bundle";
    /** How often the worker hands text to the UI thread: often enough to look live, rarely enough to stay cheap. */
    private static final long UI_UPDATE_MS = 50;
    private static final int MODEL_THREADS = 2;

    private final Handler uiThread = new Handler(Looper.getMainLooper());
    private final ExecutorService worker = Executors.newSingleThreadExecutor();
    private volatile boolean stopRequested;

    // Read and written on the worker thread only.
    private BundleManifest manifest;
    private LiteRtStepModel model;
    private String modelPrecision;

    private EditText primeInput;
    private EditText temperatureInput;
    private EditText topKInput;
    private EditText topPInput;
    private EditText lengthInput;
    private EditText seedInput;
    private CheckBox int8Check;
    private Button generateButton;
    private Button stopButton;
    private TextView statusView;
    private TextView outputView;
    private ScrollView outputScroll;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_main);
        primeInput = findViewById(R.id.prime);
        temperatureInput = findViewById(R.id.temperature);
        topKInput = findViewById(R.id.top_k);
        topPInput = findViewById(R.id.top_p);
        lengthInput = findViewById(R.id.length);
        seedInput = findViewById(R.id.seed);
        int8Check = findViewById(R.id.int8);
        generateButton = findViewById(R.id.generate);
        stopButton = findViewById(R.id.stop);
        statusView = findViewById(R.id.status);
        outputView = findViewById(R.id.output);
        outputScroll = findViewById(R.id.output_scroll);

        generateButton.setOnClickListener(view -> startGeneration());
        stopButton.setOnClickListener(view -> stopRequested = true);
        worker.execute(this::loadManifest);
    }

    @Override
    protected void onDestroy() {
        stopRequested = true;
        uiThread.removeCallbacksAndMessages(null);
        worker.execute(this::closeModel);
        worker.shutdown();
        super.onDestroy();
    }

    /** Worker thread. */
    private void loadManifest() {
        try {
            manifest = BundleManifest.parse(readAsset(BUNDLE_DIR + "/manifest.json"));
            final String description = getString(R.string.loaded, manifest.cell, manifest.numLayers,
                    manifest.vocab.kind().name().toLowerCase(Locale.ROOT), manifest.vocab.size());
            onUiThread(() -> {
                statusView.setText(description);
                generateButton.setEnabled(true);
            });
        } catch (FileNotFoundException e) {
            onUiThread(() -> statusView.setText(R.string.no_bundle));
        } catch (IOException | RuntimeException e) {
            showError(e);
        }
    }

    /** UI thread: reads the form, then hands the generation to the worker. */
    private void startGeneration() {
        final String prime = primeInput.getText().toString();
        final SamplingParams params;
        final int length;
        final long seed;
        try {
            params = new SamplingParams(parseDouble(temperatureInput, R.string.temperature),
                    parseInt(topKInput, R.string.top_k), parseDouble(topPInput, R.string.top_p), false);
            length = parseInt(lengthInput, R.string.length);
            String seedText = seedInput.getText().toString().trim();
            seed = seedText.isEmpty() ? new SecureRandom().nextLong() : parseSeed(seedText);
        } catch (IllegalArgumentException e) {
            statusView.setText(getString(R.string.failed, e.getMessage()));
            return;
        }
        final String precision = int8Check.isChecked() ? "int8" : "fp32";
        stopRequested = false;
        generateButton.setEnabled(false);
        stopButton.setEnabled(true);
        outputView.setText(prime);
        worker.execute(() -> generate(precision, prime, length, params, seed));
    }

    /** Worker thread: runs the generation, posting the text in batches, until done or stopped. */
    private void generate(String precision, String prime, int length, SamplingParams params, long seed) {
        String seedText = Long.toUnsignedString(seed);
        try {
            Generation generation = new Generation(modelFor(precision), manifest.vocab, prime, length, params, seed);
            long start = SystemClock.elapsedRealtime();
            long lastPost = start;
            int chars = 0;
            StringBuilder batch = new StringBuilder();
            while (generation.hasNext() && !stopRequested) {
                String piece = generation.next();
                batch.append(piece);
                chars += piece.codePointCount(0, piece.length());
                long now = SystemClock.elapsedRealtime();
                if (now - lastPost >= UI_UPDATE_MS) {
                    postProgress(batch.toString(), progress(chars, now - start, seedText), false);
                    batch.setLength(0);
                    lastPost = now;
                }
            }
            String summary = progress(chars, SystemClock.elapsedRealtime() - start, seedText);
            postProgress(batch.toString(), getString(stopRequested ? R.string.stopped : R.string.done, summary), true);
        } catch (IOException | RuntimeException e) {
            showError(e);
            onUiThread(this::showIdle);
        }
    }

    /** Worker thread: the interpreter for {@code precision}, loaded once and kept while the precision stays. */
    private LiteRtStepModel modelFor(String precision) throws IOException {
        if (model == null || !precision.equals(modelPrecision)) {
            closeModel();
            model = LiteRtStepModel.fromAssets(getAssets(), BUNDLE_DIR, manifest, manifest.tfliteFile(precision),
                    MODEL_THREADS);
            modelPrecision = precision;
        }
        return model;
    }

    /** Worker thread. */
    private void closeModel() {
        if (model != null) {
            model.close();
            model = null;
        }
    }

    private String progress(int chars, long millis, String seedText) {
        return getString(R.string.progress, chars, chars * 1000.0 / Math.max(millis, 1), seedText);
    }

    private void postProgress(final String text, final String status, final boolean finished) {
        onUiThread(() -> {
            outputView.append(text);
            statusView.setText(status);
            outputScroll.post(() -> outputScroll.fullScroll(View.FOCUS_DOWN));
            if (finished) {
                showIdle();
            }
        });
    }

    private void showIdle() {
        generateButton.setEnabled(manifest != null);
        stopButton.setEnabled(false);
    }

    private void showError(Exception e) {
        final String message = getString(R.string.failed, e.getMessage() != null ? e.getMessage() : e.toString());
        onUiThread(() -> statusView.setText(message));
    }

    /** Runs {@code action} on the UI thread unless the activity has gone. */
    private void onUiThread(final Runnable action) {
        uiThread.post(() -> {
            if (!isDestroyed()) {
                action.run();
            }
        });
    }

    private String readAsset(String path) throws IOException {
        try (InputStream input = getAssets().open(path)) {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            byte[] buffer = new byte[8192];
            for (int n; (n = input.read(buffer)) > 0; ) {
                bytes.write(buffer, 0, n);
            }
            return new String(bytes.toByteArray(), StandardCharsets.UTF_8);
        }
    }

    private double parseDouble(EditText input, int label) {
        try {
            return Double.parseDouble(input.getText().toString().trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(getString(R.string.bad_number, getString(label), input.getText()));
        }
    }

    private int parseInt(EditText input, int label) {
        try {
            return Integer.parseInt(input.getText().toString().trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(getString(R.string.bad_number, getString(label), input.getText()));
        }
    }

    private long parseSeed(String text) {
        try {
            return Long.parseUnsignedLong(text);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(getString(R.string.bad_number, getString(R.string.seed), text));
        }
    }
}
