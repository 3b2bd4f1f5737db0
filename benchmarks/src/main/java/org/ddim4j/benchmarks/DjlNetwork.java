package org.ddim4j.benchmarks;

import java.io.IOException;

import ai.djl.MalformedModelException;
import ai.djl.engine.Engine;
import ai.djl.inference.Predictor;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ModelNotFoundException;
import ai.djl.repository.zoo.ZooModel;
import ai.djl.translate.NoopTranslator;
import ai.djl.translate.TranslateException;

/**
 * The exported network in DJL's PyTorch engine (model.pt, TorchScript), as DJL's documentation
 * loads a traced model: a Criteria, a Predictor with the no-op translator. Offline: libtorch 2.7.1
 * comes from the pytorch-native-cpu jar on the class path, never from the network.
 */
final class DjlNetwork implements Peers.Network {
    private final ZooModel<NDList, NDList> model;
    private final Predictor<NDList, NDList> predictor;
    private final Peers.Export export;

    DjlNetwork(Peers.Export export, int threads) {
        this.export = export;
        // Read once, when the engine starts: set before anything touches DJL.
        System.setProperty("ai.djl.offline", "true");
        System.setProperty("ai.djl.pytorch.num_threads", Integer.toString(threads));
        System.setProperty("ai.djl.pytorch.num_interop_threads", "1");  // as ORT's inter-op 1: the graph has no forks
        Criteria<NDList, NDList> criteria = Criteria.builder()
                .setTypes(NDList.class, NDList.class)
                .optModelPath(export.dir())
                .optModelName("model")
                .optEngine("PyTorch")
                .optTranslator(new NoopTranslator())
                .build();
        try {
            model = criteria.loadModel();
        } catch (IOException | ModelNotFoundException | MalformedModelException e) {
            throw new IllegalStateException("DJL cannot load " + export.dir().resolve("model.pt"), e);
        }
        predictor = model.newPredictor();
    }

    @Override
    public float[] run(float[] noisy, float[] variances, int batch) {
        try (NDManager step = model.getNDManager().newSubManager()) {
            NDList inputs = new NDList(
                    step.create(noisy, new Shape(batch, export.channels(), export.imageSize(), export.imageSize())),
                    step.create(variances, new Shape(batch)));
            return predictor.predict(inputs).singletonOrThrow().toFloatArray();
        } catch (TranslateException e) {
            throw new IllegalStateException("DJL inference failed", e);
        }
    }

    @Override
    public String version() {
        Engine engine = Engine.getEngine("PyTorch");
        return "djl " + Engine.getDjlVersion() + ", libtorch " + engine.getVersion() + ", threads " + JniUtils.getNumThreads()
                + " intra-op / " + JniUtils.getNumInteropThreads() + " inter-op";
    }

    @Override
    public void close() {
        predictor.close();
        model.close();
    }
}
