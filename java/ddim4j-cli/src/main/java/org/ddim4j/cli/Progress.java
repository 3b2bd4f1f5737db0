package org.ddim4j.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;

import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * Progress of a long task on stderr: a live bar on a terminal; plain lines every {@value #LINE_EVERY_PERCENT}%
 * when stderr goes to a file or a pipe (a log then reads line by line instead of one line of carriage
 * returns); nothing with --no-progress.
 */
abstract class Progress implements AutoCloseable {
    static final int LINE_EVERY_PERCENT = 5;

    /** Moves to {@code done} of {@code total} steps; {@code detail} (may be empty) follows the count, e.g. the loss. */
    abstract void stepTo(long done, long total, String detail);

    /** Runs {@code print} (e.g. an epoch summary to stdout) without tearing the bar. */
    abstract void printAside(Runnable print);

    @Override
    public abstract void close();

    /** The display for {@code task}: none when {@code enabled} is false, a bar on a terminal, else plain lines. */
    static Progress of(String task, boolean enabled, long startsFrom, PrintWriter err) {
        if (!enabled) {
            return new None();
        }
        return stderrIsTerminal() ? new Bar(task, startsFrom) : new Lines(task, startsFrom, err);
    }

    /** Whether stderr is a terminal: on Linux, whether fd 2 is a tty device. */
    static boolean stderrIsTerminal() {
        try {
            String target = Files.readSymbolicLink(Path.of("/proc/self/fd/2")).toString();
            return target.startsWith("/dev/pts/") || target.startsWith("/dev/tty");
        } catch (IOException | UnsupportedOperationException e) {
            return System.console() != null && System.console().isTerminal();
        }
    }

    private static final class None extends Progress {
        @Override
        void stepTo(long done, long total, String detail) {}

        @Override
        void printAside(Runnable print) {
            print.run();
        }

        @Override
        public void close() {}
    }

    private static final class Bar extends Progress {
        private final String task;
        private final long startsFrom;
        private ProgressBar bar;

        Bar(String task, long startsFrom) {
            this.task = task;
            this.startsFrom = startsFrom;
        }

        @Override
        void stepTo(long done, long total, String detail) {
            if (bar == null) {
                bar = new ProgressBarBuilder().setTaskName(task).setInitialMax(total).setUnit(" steps", 1)
                        .setStyle(ProgressBarStyle.ASCII).showSpeed().setUpdateIntervalMillis(250)
                        .startsFrom(startsFrom, Duration.ZERO).continuousUpdate().build();
            }
            bar.stepTo(done);
            bar.setExtraMessage(detail);
        }

        @Override
        void printAside(Runnable print) {
            if (bar != null) {
                bar.pause();
            }
            print.run();
            if (bar != null) {
                bar.resume();
            }
        }

        @Override
        public void close() {
            if (bar != null) {
                bar.close();
                bar = null;
            }
        }
    }

    /** One line per {@value #LINE_EVERY_PERCENT}% of the steps, with the rate and the time left. */
    static final class Lines extends Progress {
        private final String task;
        private final PrintWriter stream;
        /** Steps done before this run (a resumed training run's), so the rate counts this run's steps only. */
        private final long startsFrom;
        private final long startNanos = System.nanoTime();
        private long lastPercent = -1;

        Lines(String task, long startsFrom, PrintWriter stream) {
            this.task = task;
            this.startsFrom = startsFrom;
            this.stream = stream;
        }

        @Override
        void stepTo(long done, long total, String detail) {
            long percent = total > 0 ? done * 100 / total : 100;
            long bucket = percent / LINE_EVERY_PERCENT * LINE_EVERY_PERCENT;
            if (bucket <= lastPercent && done < total) {
                return;
            }
            lastPercent = bucket;
            double seconds = (System.nanoTime() - startNanos) / 1e9;
            double rate = (done - startsFrom) / Math.max(seconds, 1e-9);
            String left = rate > 0 && done < total ? String.format(Locale.ROOT, ", %.0f s left", (total - done) / rate) : "";
            stream.printf(Locale.ROOT, "%s: %d%% (%d/%d steps, %.1f steps/s%s)%s%n", task, percent, done, total, rate, left,
                    detail.isEmpty() ? "" : "," + detail);
            stream.flush();
        }

        @Override
        void printAside(Runnable print) {
            print.run();
        }

        @Override
        public void close() {}
    }
}
