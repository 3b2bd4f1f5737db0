package org.ddim4j.serve;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;

import org.ddim4j.Ddim;
import org.ddim4j.SampleOptions;
import org.ddim4j.Sampler;
import org.ddim4j.TestModels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The batcher's merged calls give every job the floats it gets alone, and keep jobs of other settings apart. */
class BatcherTest {
    private static Ddim ddim;

    @BeforeAll
    static void createModel() {
        ddim = TestModels.trainedTiny(11);
    }

    @AfterAll
    static void closeModel() {
        ddim.close();
    }

    @Test
    void mergedJobsGetExactlyTheirOwnFloats() throws Exception {
        try (Batcher batcher = new Batcher(ddim, ServeSettings.defaults(), new ServeMetrics(() -> 0, () -> 0))) {
            List<SampleOptions> requests = List.of(
                    SampleOptions.builder().count(2).steps(3).seed(4).build(),
                    SampleOptions.builder().count(3).steps(3).seed(9).firstIndex(6).build(),
                    SampleOptions.builder().count(1).steps(3).seed(4).firstIndex(2).build(),
                    SampleOptions.builder().count(2).steps(3).seed(5).sampler(Sampler.DPM_SOLVER_PP_2M).build());
            Gate gate = Gate.hold(batcher);
            List<SampleJob> jobs = requests.stream().map(options -> new SampleJob(options, null)).toList();
            jobs.forEach(batcher::submit);
            gate.open();
            for (int i = 0; i < jobs.size(); i++) {
                SampleJob.Result result = jobs.get(i).result().get();
                assertEquals(i < 3 ? 3 : 1, result.batchRequests(), "job " + i);
                assertArrayEquals(ddim.sample(requests.get(i)).pixels(), result.images().pixels(), "job " + i + " merged vs alone");
            }
            assertEquals(3, batcher.stats().calls(), "the gate's call, the three DDIM jobs, the DPM-Solver job");
        }
    }
}
