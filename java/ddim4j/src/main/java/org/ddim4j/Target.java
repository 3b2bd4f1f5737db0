package org.ddim4j;

/** What the network is trained to predict from a noisy image. */
public enum Target {
    /** The noise that was added (the reference's default). */
    NOISE,
    /** The clean image. */
    IMAGE
}
