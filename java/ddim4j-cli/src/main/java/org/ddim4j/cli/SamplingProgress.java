package org.ddim4j.cli;

import java.io.PrintWriter;

import org.ddim4j.SampleListener;

/** Shows sampling's per-step progress (a bar on a terminal, plain lines in a log; see {@link Progress}). */
final class SamplingProgress implements SampleListener, AutoCloseable {
    private final Progress progress;

    SamplingProgress(String task, boolean enabled, PrintWriter err) {
        this.progress = Progress.of(task, enabled, 0, err);
    }

    @Override
    public void onStep(SampleProgress step) {
        progress.stepTo(step.stepsDone(), step.totalSteps(), "");
    }

    @Override
    public void close() {
        progress.close();
    }
}
