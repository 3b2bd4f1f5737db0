package org.ddim4j.serve;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

import org.ddim4j.Ddim;
import org.ddim4j.ImageBatch;
import org.ddim4j.ImageId;
import org.ddim4j.SampleListener;
import org.ddim4j.SampleOptions;

/**
 * Dynamic batching: one thread samples every job, and merges queued jobs of the same steps, sampler,
 * eta and guidance (classes may differ: they are per image) into one call of up to
 * {@code maxBatchImages} images. The call names each image by its own (seed, index) and class
 * ({@link SampleOptions.Builder#images}), and the network sees fixed micro-batches,
 * so every job gets exactly the pixels it would get alone: merging changes throughput, never images.
 *
 * <p>An idle batcher lets the first job wait {@code batchWindow} for company; jobs that queued while
 * a call ran go together at once. Jobs run in arrival order: the oldest job picks the settings, and
 * later jobs that don't match wait for the next call.
 */
final class Batcher implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(Batcher.class.getName());

    /** Counters since start, for /health and the load test: sampling calls made and cancelled, requests and images served. */
    record Stats(long calls, long cancelledCalls, long requests, long images, int queued, int running, double lastCallSeconds) {}

    private final Ddim ddim;
    private final ServeSettings settings;
    private final ServeMetrics metrics;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    private final ArrayDeque<SampleJob> queue = new ArrayDeque<>();
    private final Thread worker;
    private boolean accepting = true;
    private volatile boolean abandonRunning;
    private final AtomicLong calls = new AtomicLong();
    private final AtomicLong cancelledCalls = new AtomicLong();
    private final AtomicLong requests = new AtomicLong();
    private final AtomicLong images = new AtomicLong();
    private volatile double lastCallSeconds;
    private volatile int runningRequests;

    Batcher(Ddim ddim, ServeSettings settings, ServeMetrics metrics) {
        this.ddim = ddim;
        this.settings = settings;
        this.metrics = metrics;
        this.worker = Thread.ofPlatform().name("ddim-sampler").daemon().start(this::work);
    }

    /** Queues {@code job}; false when the queue is full. */
    boolean submit(SampleJob job) {
        lock.lock();
        try {
            if (!accepting) {
                throw new IllegalStateException("the server is shutting down");
            }
            if (queue.size() >= settings.queueCapacity()) {
                return false;
            }
            queue.addLast(job);
            changed.signalAll();
            return true;
        } finally {
            lock.unlock();
        }
    }

    Stats stats() {
        lock.lock();
        try {
            return new Stats(calls.get(), cancelledCalls.get(), requests.get(), images.get(), queue.size(), runningRequests, lastCallSeconds);
        } finally {
            lock.unlock();
        }
    }

    /** Seconds a client refused with 429 should wait: about the time the queue ahead needs. */
    long retryAfterSeconds() {
        Stats stats = stats();
        double callsAhead = Math.ceil((double) stats.queued() / Math.max(1, settings.maxBatchImages()));
        return Math.max(1, (long) Math.ceil(callsAhead * Math.max(stats.lastCallSeconds(), 0.1)));
    }

    private void work() {
        for (List<SampleJob> batch; (batch = nextBatch()) != null; ) {
            try {
                run(batch);
            } catch (RuntimeException | Error e) { // a job's failure must never stop the server's only sampler
                LOG.log(System.Logger.Level.ERROR, "sampling failed", e);
                metrics.callEnded("failed");
                batch.forEach(job -> job.result().completeExceptionally(e));
            }
        }
    }

    /** The next jobs to sample together, or null once the batcher is closed and its queue empty. */
    private List<SampleJob> nextBatch() {
        lock.lock();
        try {
            while (true) {
                queue.removeIf(SampleJob::isCancelled);
                if (!queue.isEmpty()) {
                    break;
                }
                if (!accepting) {
                    return null;
                }
                changed.awaitUninterruptibly();
            }
            SampleJob first = queue.removeFirst();
            List<SampleJob> batch = new ArrayList<>(List.of(first));
            if (first.count() >= settings.maxBatchImages() || first.options().noise() != null) {
                return batch;
            }
            long deadline = first.arrivalNanos() + settings.batchWindow().toNanos();
            int images = first.count();
            while (true) {
                for (Iterator<SampleJob> it = queue.iterator(); it.hasNext() && images < settings.maxBatchImages(); ) {
                    SampleJob job = it.next();
                    if (!job.isCancelled() && first.mergesWith(job) && images + job.count() <= settings.maxBatchImages()) {
                        it.remove();
                        batch.add(job);
                        images += job.count();
                    }
                }
                long wait = deadline - System.nanoTime();
                if (images >= settings.maxBatchImages() || wait <= 0 || !accepting) {
                    return batch;
                }
                try {
                    changed.awaitNanos(wait);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return batch;
                }
            }
        } finally {
            lock.unlock();
        }
    }

    /** Samples {@code batch} in one call and hands each job its slice. */
    private void run(List<SampleJob> batch) {
        batch.removeIf(SampleJob::isCancelled);
        if (batch.isEmpty()) {
            return;
        }
        SampleJob first = batch.getFirst();
        boolean previews = batch.stream().anyMatch(job -> job.listener() != null);
        SampleOptions.Builder options = first.options().toBuilder()
                .microBatch(settings.microBatch()).precision(settings.precision()).network(settings.network())
                .listener(new Dispatch(batch)).previewEvery(previews ? settings.previewEvery() : 0);
        if (batch.size() > 1) {
            List<ImageId> ids = new ArrayList<>();
            List<Integer> classes = new ArrayList<>();
            for (SampleJob job : batch) {
                ids.addAll(job.imageIds());
                classes.addAll(job.imageClasses());
            }
            options.classes(classes).images(ids);
        }
        int total = batch.stream().mapToInt(SampleJob::count).sum();
        long start = System.nanoTime();
        ImageBatch all;
        runningRequests = batch.size();
        try {
            all = ddim.sample(options.build());
        } catch (CancellationException e) {
            cancelledCalls.incrementAndGet();
            metrics.callEnded("cancelled");
            batch.forEach(job -> job.result().completeExceptionally(e));
            return;
        } finally {
            runningRequests = 0;
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        lastCallSeconds = seconds;
        calls.incrementAndGet();
        requests.addAndGet(batch.size());
        images.addAndGet(total);
        metrics.callCompleted(batch.size(), total, seconds);
        int offset = 0;
        for (SampleJob job : batch) {
            job.result().complete(new SampleJob.Result(all.slice(offset, offset + job.count()), batch.size(), total, seconds));
            offset += job.count();
        }
    }

    /** Hands each job the progress of the call and the previews of its own images; cancels once every job is gone. */
    private final class Dispatch implements SampleListener {
        private final List<SampleJob> batch;

        Dispatch(List<SampleJob> batch) {
            this.batch = batch;
        }

        @Override
        public void onStep(SampleProgress progress) {
            int jobStart = 0;
            for (SampleJob job : batch) {
                int jobEnd = jobStart + job.count();
                long from = Math.max(jobStart, progress.firstImage());
                long to = Math.min(jobEnd, progress.firstImage() + progress.images());
                if (job.listener() != null && !job.isCancelled() && from < to) {
                    ImageBatch preview = progress.preview() == null ? null
                            : progress.preview().slice((int) (from - progress.firstImage()), (int) (to - progress.firstImage()));
                    job.listener().onProgress(progress.stepsDone(), progress.totalSteps(), preview, (int) (from - jobStart));
                }
                jobStart = jobEnd;
            }
        }

        @Override
        public boolean stopRequested() {
            return abandonRunning || batch.stream().allMatch(SampleJob::isCancelled);
        }
    }

    /**
     * Stops taking jobs, fails the queued ones, lets the running call finish for up to {@code grace},
     * then cancels it. Returns once the sampling thread has stopped.
     */
    void close(Duration grace) {
        lock.lock();
        try {
            accepting = false;
            queue.forEach(job -> job.result().completeExceptionally(new IllegalStateException("the server is shutting down")));
            queue.clear();
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        try {
            if (!worker.join(grace)) {
                abandonRunning = true;
                worker.join(Duration.ofSeconds(60));
            }
        } catch (InterruptedException e) {
            abandonRunning = true;
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        close(settings.shutdownGrace());
    }

    boolean isRunning() {
        return worker.isAlive();
    }

    /** Whether a closing batcher has given up waiting and asked the running call to stop. */
    boolean isAbandoningRunningCall() {
        return abandonRunning;
    }
}
