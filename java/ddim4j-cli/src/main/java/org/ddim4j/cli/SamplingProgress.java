package org.ddim4j.cli;

import java.time.Duration;

import org.ddim4j.SampleListener;

import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/** Draws a progress bar (on stderr) from sampling's per-step progress. */
final class SamplingProgress implements SampleListener, AutoCloseable {
    private final String task;
    private final boolean enabled;
    private ProgressBar bar;

    SamplingProgress(String task, boolean enabled) {
        this.task = task;
        this.enabled = enabled;
    }

    @Override
    public void onStep(SampleProgress progress) {
        if (!enabled) {
            return;
        }
        if (bar == null) {
            bar = new ProgressBarBuilder().setTaskName(task).setInitialMax(progress.totalSteps()).setUnit(" steps", 1)
                    .setStyle(ProgressBarStyle.ASCII).showSpeed().setUpdateIntervalMillis(250)
                    .startsFrom(0, Duration.ZERO).continuousUpdate().build();
        }
        bar.stepTo(progress.stepsDone());
    }

    @Override
    public void close() {
        if (bar != null) {
            bar.close();
            bar = null;
        }
    }
}
