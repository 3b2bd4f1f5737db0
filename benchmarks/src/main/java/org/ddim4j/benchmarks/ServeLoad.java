package org.ddim4j.benchmarks;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A bounded load test of a running `ddim serve` (benchmarks/serve-load.sh starts the servers): a warm-up,
 * then {@code --requests} POST /v1/samples from {@code --clients} concurrent clients, each request one image
 * of its own seed. With {@code --classes N} request i asks for class i mod N (mixed classes, a class model) at
 * {@code --guidance}; with {@code --token-file} every request carries the token. Stops by itself; prints one JSON
 * line: throughput, latency percentiles, failed requests (any status but 200, a 401 included), and the server's
 * resident memory (VmRSS of {@code --pid}) after the warm-up, at the end and at its peak.
 *
 * <pre>
 * java -cp benchmarks/target/benchmarks.jar org.ddim4j.benchmarks.ServeLoad --url http://127.0.0.1:8080/ --pid PID \
 *     [--classes 10 --guidance 3 --token-file token.txt]
 * </pre>
 */
public final class ServeLoad {
    private ServeLoad() {}

    public static void main(String[] args) throws Exception {
        URI url = URI.create(option(args, "--url", "http://127.0.0.1:8080/"));
        int requests = Integer.parseInt(option(args, "--requests", "200"));
        int clients = Integer.parseInt(option(args, "--clients", "16"));
        int steps = Integer.parseInt(option(args, "--steps", "5"));
        int warmup = Integer.parseInt(option(args, "--warmup", "32"));
        long pid = Long.parseLong(option(args, "--pid", "0"));
        int classes = Integer.parseInt(option(args, "--classes", "0"));
        double guidance = Double.parseDouble(option(args, "--guidance", "1"));
        String tokenFile = option(args, "--token-file", null);
        Load load = new Load(url, steps, classes, guidance, tokenFile == null ? null : Files.readString(Path.of(tokenFile)).strip());
        HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10)).build();

        run(client, load, warmup, clients, 1_000_000, new ArrayList<>(), new AtomicInteger(), new AtomicInteger());
        long rssAfterWarmup = rssKib(pid);
        AtomicLong rssPeak = new AtomicLong(rssAfterWarmup);
        Thread sampler = Thread.ofPlatform().daemon().start(() -> {
            while (!Thread.currentThread().isInterrupted()) {
                rssPeak.accumulateAndGet(rssKib(pid), Math::max);
                try {
                    Thread.sleep(100);
                } catch (InterruptedException e) {
                    return;
                }
            }
        });
        List<Double> latencies = Collections.synchronizedList(new ArrayList<>());
        AtomicInteger failed = new AtomicInteger();
        AtomicInteger batched = new AtomicInteger();
        long start = System.nanoTime();
        run(client, load, requests, clients, 0, latencies, failed, batched);
        double seconds = (System.nanoTime() - start) / 1e9;
        sampler.interrupt();
        long rssEnd = rssKib(pid);
        List<Double> sorted = new ArrayList<>(latencies);
        Collections.sort(sorted);
        System.out.printf(Locale.ROOT, "{\"requests\": %d, \"clients\": %d, \"steps\": %d, \"classes\": %d, \"guidance\": %s, "
                        + "\"token\": %b, \"ok\": %d, \"failed\": %d, \"seconds\": %.3f, "
                        + "\"requests_per_second\": %.3f, \"p50_ms\": %.1f, \"p99_ms\": %.1f, \"max_ms\": %.1f, \"batched_requests\": %d, "
                        + "\"rss_after_warmup_mib\": %.1f, \"rss_end_mib\": %.1f, \"rss_peak_mib\": %.1f}%n",
                requests, clients, steps, classes, guidance, load.token != null, sorted.size(), failed.get(), seconds, sorted.size() / seconds, percentile(sorted, 50),
                percentile(sorted, 99), sorted.isEmpty() ? 0 : sorted.getLast(), batched.get(), rssAfterWarmup / 1024.0,
                rssEnd / 1024.0, rssPeak.get() / 1024.0);
        if (failed.get() > 0) {
            System.exit(1);
        }
    }

    /** What every request of a run asks for, and its token (null: none). */
    private record Load(URI url, int steps, int classes, double guidance, String token) {
        HttpRequest request(long index, long seed) {
            String body = "{\"count\": 1, \"steps\": " + steps + ", \"seed\": " + seed
                    + (classes > 0 ? ", \"class\": " + (index % classes) + ", \"guidance\": " + guidance : "") + "}";
            HttpRequest.Builder request = HttpRequest.newBuilder(url.resolve("/v1/samples")).timeout(Duration.ofMinutes(5))
                    .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body));
            return (token == null ? request : request.header("Authorization", "Bearer " + token)).build();
        }
    }

    /** Sends {@code requests} requests from {@code clients} threads; request i samples seed {@code firstSeed + i}. */
    private static void run(HttpClient client, Load load, int requests, int clients, long firstSeed, List<Double> latencies,
            AtomicInteger failed, AtomicInteger batched) throws Exception {
        AtomicInteger next = new AtomicInteger();
        try (ExecutorService pool = Executors.newFixedThreadPool(clients)) {
            List<Future<?>> workers = new ArrayList<>();
            for (int c = 0; c < clients; c++) {
                workers.add(pool.submit(() -> {
                    for (int i; (i = next.getAndIncrement()) < requests; ) {
                        HttpRequest request = load.request(i, firstSeed + i);
                        long sent = System.nanoTime();
                        try {
                            HttpResponse<String> response = client.send(request, HttpResponse.BodyHandlers.ofString());
                            if (response.statusCode() != 200) {
                                System.err.println("request " + i + ": " + response.statusCode() + " " + response.body());
                                failed.incrementAndGet();
                                continue;
                            }
                            latencies.add((System.nanoTime() - sent) / 1e6);
                            if (!response.body().contains("\"batch\":{\"requests\":1,")) {
                                batched.incrementAndGet();
                            }
                        } catch (IOException e) {
                            System.err.println("request " + i + ": " + e);
                            failed.incrementAndGet();
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> worker : workers) {
                worker.get();
            }
        }
    }

    private static double percentile(List<Double> sorted, int p) {
        return sorted.isEmpty() ? 0 : sorted.get(Math.min(sorted.size() - 1, (int) Math.ceil(p / 100.0 * sorted.size()) - 1));
    }

    /** The process's resident memory in KiB (0 without a pid or on a system without /proc). */
    private static long rssKib(long pid) {
        if (pid <= 0) {
            return 0;
        }
        try {
            for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", ""));
                }
            }
        } catch (IOException | NumberFormatException e) {
            return 0;
        }
        return 0;
    }

    private static String option(String[] args, String name, String fallback) {
        for (int i = 0; i + 1 < args.length; i++) {
            if (args[i].equals(name)) {
                return args[i + 1];
            }
        }
        return fallback;
    }
}
