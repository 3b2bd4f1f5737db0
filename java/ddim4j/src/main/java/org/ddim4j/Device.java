package org.ddim4j;

import org.ddim4j.ffi.ddim_h;

/** Where a model's tensors live: the CPU, a CUDA device, or "auto" (CUDA device 0 when present, else the CPU). */
public final class Device {
    private static final Device CPU = new Device(ddim_h.DDIM_DEVICE_CPU());
    private static final Device AUTO = new Device(ddim_h.DDIM_DEVICE_AUTO());

    private final int code;

    private Device(int code) {
        this.code = code;
    }

    public static Device cpu() {
        return CPU;
    }

    public static Device cuda(int index) {
        if (index < 0) {
            throw new IllegalArgumentException("CUDA device index must be >= 0, got " + index);
        }
        return new Device(index);
    }

    /** CUDA device 0 when this build and machine have one, else the CPU; resolved when a model is created or opened. */
    public static Device auto() {
        return AUTO;
    }

    /** Parses "cpu", "auto", "cuda" (device 0) or "cuda:N". */
    public static Device parse(String text) {
        String value = text.trim().toLowerCase(java.util.Locale.ROOT);
        if (value.equals("cpu")) {
            return cpu();
        }
        if (value.equals("auto")) {
            return auto();
        }
        if (value.equals("cuda")) {
            return cuda(0);
        }
        if (value.startsWith("cuda:")) {
            try {
                return cuda(Integer.parseInt(value.substring(5)));
            } catch (NumberFormatException e) {
                // fall through to the error below
            }
        }
        throw new IllegalArgumentException("unknown device '" + text + "': expected cpu, auto, cuda or cuda:N");
    }

    /** The number of CUDA devices the native library can use (0 on a CPU-only build or machine). */
    public static int cudaDeviceCount() {
        NativeLibrary.load();
        return ddim_h.ddim_cuda_device_count();
    }

    static Device fromCode(int code) {
        return code == ddim_h.DDIM_DEVICE_CPU() ? CPU : new Device(code);
    }

    int code() {
        return code;
    }

    public boolean isCpu() {
        return this == CPU || code == ddim_h.DDIM_DEVICE_CPU();
    }

    public boolean isCuda() {
        return code >= 0;
    }

    /** The CUDA device index; -1 for the CPU and for auto. */
    public int index() {
        return Math.max(code, -1);
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof Device device && device.code == code;
    }

    @Override
    public int hashCode() {
        return Integer.hashCode(code);
    }

    @Override
    public String toString() {
        if (code >= 0) {
            return "cuda:" + code;
        }
        return code == ddim_h.DDIM_DEVICE_CPU() ? "cpu" : "auto";
    }
}
