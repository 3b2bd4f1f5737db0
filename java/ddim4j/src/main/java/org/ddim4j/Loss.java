package org.ddim4j;

/** The training loss between the network's prediction and its target. */
public enum Loss {
    /** Mean absolute error (the reference's default). */
    MAE,
    /** Mean squared error. */
    MSE
}
