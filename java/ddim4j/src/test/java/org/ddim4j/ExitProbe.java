package org.ddim4j;

import java.nio.file.Path;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;

import org.ddim4j.data.Datasets;

/**
 * A child JVM that starts a long native call on a worker thread, prints {@code running} once it is under way, and
 * then ends while the call runs: {@code exit} calls {@code System.exit(3)} from the main thread, {@code signal}
 * waits for the parent's SIGTERM. The worker prints how its call ended, and a shutdown hook whether the worker
 * ended before the JVM. Used by {@link ProcessExitTest}.
 *
 * <p>Arguments: {@code sample|train exit|signal [checkpoint-dir]}.
 */
public final class ExitProbe {
    public static void main(String[] args) throws Exception {
        String work = args[0];
        boolean exit = args[1].equals("exit");
        CountDownLatch running = new CountDownLatch(1);
        Thread worker = new Thread(() -> {
            if (work.equals("sample")) {
                try (Ddim ddim = Ddim.open(ChildJvm.SHIPPED_MODEL)) {
                    ddim.sample(SampleOptions.builder().count(16).steps(10_000).seed(1).listener(step -> running.countDown()).build());
                } catch (CancellationException e) {
                    System.out.println("sampling ended: " + e.getMessage());
                }
            } else {
                try (Ddim ddim = Ddim.create(ModelConfig.builder().imageSize(32).channels(1).build(), Device.cpu(), 1)) {
                    // No periodic checkpoint: the one on disk must come from the exit.
                    TrainOptions options = TrainOptions.builder().batchSize(16).steps(100_000).checkpointDir(Path.of(args[2]))
                            .checkpointEvery(100_000).build();
                    Trainer.Result result = ddim.trainer(options).fit(Datasets.fashionMnist(1, 32, 512), new TrainListener() {
                        @Override
                        public void onStep(StepEvent step) {
                            running.countDown();
                        }
                    });
                    System.out.println("training ended: cancelled=" + result.cancelled() + " steps=" + result.steps());
                }
            }
            System.out.flush();
        }, "ddim-work");
        worker.setDaemon(true);
        worker.setUncaughtExceptionHandler((thread, failure) -> {
            failure.printStackTrace();
            Runtime.getRuntime().halt(99);
        });
        worker.start();
        // As an application would: its own hook waits for the work to end (hooks run concurrently with ddim4j's).
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                worker.join(30_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            System.out.println(worker.isAlive() ? "worker still running at exit" : "worker done at exit");
            System.out.flush();
        }));
        running.await();
        System.out.println("running");
        System.out.flush();
        if (exit) {
            Thread.sleep(Long.getLong("probe.delay", 50));
            System.exit(3);
        }
        worker.join();
    }
}
