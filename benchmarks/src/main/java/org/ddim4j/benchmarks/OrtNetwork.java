package org.ddim4j.benchmarks;

import java.nio.FloatBuffer;
import java.util.Map;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;

/**
 * The exported network in ONNX Runtime (model.onnx), tuned as its documentation advises for CPU
 * latency: all graph optimisations, sequential execution, {@code threads} intra-op threads, 1 inter-op.
 */
final class OrtNetwork implements Peers.Network {
    private final OrtEnvironment environment = OrtEnvironment.getEnvironment();
    private final OrtSession session;
    private final Peers.Export export;
    private final int threads;

    OrtNetwork(Peers.Export export, int threads) {
        this.export = export;
        this.threads = threads;
        try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
            options.setIntraOpNumThreads(threads);
            options.setInterOpNumThreads(1);
            options.setExecutionMode(OrtSession.SessionOptions.ExecutionMode.SEQUENTIAL);
            options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            session = environment.createSession(export.dir().resolve("model.onnx").toString(), options);
        } catch (OrtException e) {
            throw new IllegalStateException("ONNX Runtime cannot load " + export.dir().resolve("model.onnx"), e);
        }
    }

    @Override
    public float[] run(float[] noisy, float[] variances, int batch) {
        long[] shape = {batch, export.channels(), export.imageSize(), export.imageSize()};
        try (OnnxTensor x = OnnxTensor.createTensor(environment, FloatBuffer.wrap(noisy), shape);
             OnnxTensor v = OnnxTensor.createTensor(environment, FloatBuffer.wrap(variances), new long[] {batch});
             OrtSession.Result result = session.run(Map.of("noisy", x, "noise_variances", v))) {
            FloatBuffer output = ((OnnxTensor) result.get(0)).getFloatBuffer();
            float[] values = new float[output.remaining()];
            output.get(values);
            return values;
        } catch (OrtException e) {
            throw new IllegalStateException("ONNX Runtime inference failed", e);
        }
    }

    @Override
    public String version() {
        return "onnxruntime " + environment.getVersion() + ", threads " + threads + " intra-op / 1 inter-op, ALL_OPT";
    }

    @Override
    public void close() {
        try {
            session.close();
        } catch (OrtException e) {
            throw new IllegalStateException(e);
        }
    }
}
