package org.kerasrnn.edge;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A TFLite file's own signature: the names, shapes and dtypes of its inputs and outputs, read in plain Java
 * from the file's FlatBuffer (TensorFlow's {@code tensorflow/compiler/mlir/lite/schema/schema.fbs}:
 * {@code Model.signature_defs} name tensors of {@code Model.subgraphs}), so that the core checks a model
 * file against its manifest entry ({@link ModelFile#checkTensors}) where no runtime is at hand.
 */
public final class TfliteSignature {
    // Field numbers in schema.fbs.
    private static final int MODEL_SUBGRAPHS = 2;
    private static final int MODEL_SIGNATURE_DEFS = 7;
    private static final int SUBGRAPH_TENSORS = 0;
    private static final int TENSOR_SHAPE = 0;
    private static final int TENSOR_TYPE = 1;
    private static final int SIGNATURE_INPUTS = 0;
    private static final int SIGNATURE_OUTPUTS = 1;
    private static final int SIGNATURE_KEY = 2;
    private static final int SIGNATURE_SUBGRAPH = 4;
    private static final int TENSOR_MAP_NAME = 0;
    private static final int TENSOR_MAP_INDEX = 1;
    /** TensorType values 0 and 2; the manifest's tensors are float32 or int32, and others are shown by number. */
    private static final String[] TYPES = {"float32", "float16", "int32", "uint8", "int64"};

    public final Map<String, TensorSpec> inputs;
    public final Map<String, TensorSpec> outputs;

    private final ByteBuffer model;

    private TfliteSignature(ByteBuffer model, String path, String key) {
        this.model = model.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        try {
            int root = this.model.getInt(0);
            int signature = 0;
            for (int def : tables(field(root, MODEL_SIGNATURE_DEFS))) {
                signature = key.equals(string(field(def, SIGNATURE_KEY))) ? def : signature;
            }
            if (signature == 0) {
                throw new ManifestException(path + " has no signature \"" + key + "\", which "
                        + BundleManifest.MANIFEST + " lists: the bundle is inconsistent, export it again (kerasrnn export)");
            }
            int subgraph = tables(field(root, MODEL_SUBGRAPHS)).get(uint(signature, SIGNATURE_SUBGRAPH));
            List<Integer> tensors = tables(field(subgraph, SUBGRAPH_TENSORS));
            this.inputs = tensors(field(signature, SIGNATURE_INPUTS), tensors);
            this.outputs = tensors(field(signature, SIGNATURE_OUTPUTS), tensors);
        } catch (IndexOutOfBoundsException | NegativeArraySizeException e) {
            throw new ManifestException(path + " is not a TFLite model (its FlatBuffer is damaged): the bundle is "
                    + "corrupt, export it again (kerasrnn export)");
        }
    }

    /** The signature {@code key} of the TFLite model {@code model} (the file {@code path}, for messages). */
    public static TfliteSignature read(ByteBuffer model, String path, String key) {
        return new TfliteSignature(model, path, key);
    }

    private Map<String, TensorSpec> tensors(int tensorMaps, List<Integer> tensors) {
        Map<String, TensorSpec> specs = new LinkedHashMap<String, TensorSpec>();
        for (int map : tables(tensorMaps)) {
            int tensor = tensors.get(uint(map, TENSOR_MAP_INDEX));
            int shapeAt = field(tensor, TENSOR_SHAPE);
            int[] shape = new int[shapeAt == 0 ? 0 : model.getInt(shapeAt)];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = model.getInt(shapeAt + 4 + 4 * i);
            }
            int typeAt = fieldPosition(tensor, TENSOR_TYPE);
            int type = typeAt == 0 ? 0 : model.get(typeAt);
            specs.put(string(field(map, TENSOR_MAP_NAME)),
                    new TensorSpec(shape, type >= 0 && type < TYPES.length ? TYPES[type] : "type " + type));
        }
        return specs;
    }

    /** Where field {@code number} of the table at {@code table} is stored; 0 if absent. */
    private int fieldPosition(int table, int number) {
        int vtable = table - model.getInt(table);
        int entry = 4 + 2 * number;
        if (entry >= (model.getShort(vtable) & 0xFFFF)) {
            return 0;
        }
        int offset = model.getShort(vtable + entry) & 0xFFFF;
        return offset == 0 ? 0 : table + offset;
    }

    /** The table, vector or string that field {@code number} refers to; 0 if absent. */
    private int field(int table, int number) {
        int at = fieldPosition(table, number);
        return at == 0 ? 0 : at + model.getInt(at);
    }

    private int uint(int table, int number) {
        int at = fieldPosition(table, number);
        return at == 0 ? 0 : model.getInt(at);
    }

    /** The tables of the vector at {@code vector} (none if absent). */
    private List<Integer> tables(int vector) {
        List<Integer> tables = new ArrayList<Integer>();
        for (int i = 0; vector != 0 && i < model.getInt(vector); i++) {
            int at = vector + 4 + 4 * i;
            tables.add(at + model.getInt(at));
        }
        return tables;
    }

    private String string(int at) {
        if (at == 0) {
            return "";
        }
        byte[] bytes = new byte[model.getInt(at)];
        for (int i = 0; i < bytes.length; i++) {
            bytes[i] = model.get(at + 4 + i);
        }
        return new String(bytes, StandardCharsets.UTF_8);
    }
}
