package org.ddim4j.cli;

import org.ddim4j.Ddim;
import org.ddim4j.Device;

import picocli.CommandLine.Option;

/** Options every command that runs a model shares. */
final class RuntimeOptions {
    @Option(names = "--device", defaultValue = "auto", paramLabel = "DEVICE",
            description = "cpu, auto (CUDA when present), cuda or cuda:N (default: ${DEFAULT-VALUE})")
    String device;

    @Option(names = "--threads", defaultValue = "0", paramLabel = "N",
            description = "CPU threads per operation; 0 = all available processors (default)")
    int threads;

    Device device() {
        if (threads < 0) {
            throw new IllegalArgumentException("--threads must be >= 0 (0 = all available processors), got " + threads);
        }
        Ddim.setThreads(threads);
        return Device.parse(device);
    }
}
