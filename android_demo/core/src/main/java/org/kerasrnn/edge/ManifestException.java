package org.kerasrnn.edge;

/** A bundle manifest this sampler cannot use; the message says what is wrong and, where it can, what to do. */
public final class ManifestException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public ManifestException(String message) {
        super(message);
    }
}
