package org.ddim4j;

/**
 * How to walk from noise to an image. Each evaluates the network exactly {@code steps} times, at
 * t = 1, 1 - 1/steps, ..., 1/steps, and returns the last predicted image.
 */
public enum Sampler {
    /** DDIM (Song et al. 2020) with {@link SampleOptions#eta()}: 0 is deterministic (the reference), 1 has DDPM's variance. */
    DDIM,
    /** DDPM ancestral sampling (Ho et al. 2020): each step draws from the posterior given the predicted image. */
    DDPM,
    /** DPM-Solver++(2M) (Lu et al. 2022): a second-order multistep ODE solver, closer to the many-step result at few steps. */
    DPM_SOLVER_PP_2M
}
