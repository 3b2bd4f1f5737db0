package org.ddim4j.serve;

import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import org.ddim4j.ImageBatch;
import org.ddim4j.ImageId;
import org.ddim4j.SampleOptions;

/**
 * One client's request waiting for, or inside, a sampling call. The {@link Batcher} completes
 * {@link #result()}; the client's side may {@link #cancel()} it at any time (a closed stream, a
 * timeout), after which it gets no more progress and its images are dropped.
 */
final class SampleJob {
    /** Progress of a job as it is sampled; called on the sampling thread, so it must only hand the event on. */
    interface Listener {
        /**
         * @param stepsDone steps done of {@code totalSteps}, over all chunks of the job's call
         * @param preview the job's own images as predicted after this step (image 0 = the job's first), or null
         * @param firstPreviewImage index within the job of the preview's first image
         */
        void onProgress(long stepsDone, long totalSteps, ImageBatch preview, int firstPreviewImage);
    }

    /** The job's images and the call that made them. */
    record Result(ImageBatch images, int batchRequests, int batchImages, double seconds) {}

    private final SampleOptions options;
    private final Listener listener;
    private final long arrivalNanos = System.nanoTime();
    private final CompletableFuture<Result> result = new CompletableFuture<>();
    private volatile boolean cancelled;

    /** A job sampling as {@code options} says (no listener of their own); {@code listener} may be null. */
    SampleJob(SampleOptions options, Listener listener) {
        this.options = options;
        this.listener = listener;
    }

    SampleOptions options() {
        return options;
    }

    int count() {
        return options.count();
    }

    /** The (seed, index) of each image: what lets the job share a call with others and keep its pixels. */
    List<ImageId> imageIds() {
        return ImageId.range(options.seed(), options.firstIndex(), options.count());
    }

    /**
     * Whether the job can share a call, computing in it exactly the pixels it computes alone: no caller noise, the
     * same settings that shape every step (steps, sampler, eta, EMA), and the same conditioning of the network. Labels
     * are per image, so jobs of different classes merge; but jobs with classes and jobs without (the unconditional
     * prediction) do not, and guidance weighs a whole call.
     */
    boolean mergesWith(SampleJob other) {
        SampleOptions mine = options, theirs = other.options;
        return mine.noise() == null && theirs.noise() == null && mine.steps() == theirs.steps()
                && mine.sampler() == theirs.sampler() && Double.compare(mine.eta(), theirs.eta()) == 0
                && mine.useEma() == theirs.useEma() && mine.classes().isEmpty() == theirs.classes().isEmpty()
                && Double.compare(mine.guidance(), theirs.guidance()) == 0;
    }

    /** The class of each image (empty: no class): the job's one class repeated, or its own list. */
    List<Integer> imageClasses() {
        List<Integer> classes = options.classes();
        return classes.size() == 1 ? Collections.nCopies(options.count(), classes.getFirst()) : classes;
    }

    Listener listener() {
        return listener;
    }

    long arrivalNanos() {
        return arrivalNanos;
    }

    CompletableFuture<Result> result() {
        return result;
    }

    void cancel() {
        cancelled = true;
        result.cancel(false);
    }

    boolean isCancelled() {
        return cancelled;
    }
}
