package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class ScheduleTest {
    private static final float[] TIMES = {0f, 0.5f, 1f};

    @Test
    void cosineMatchesClosedForm() {
        Schedule.Rates rates = Schedule.cosine().rates(TIMES);
        for (int i = 0; i < TIMES.length; i++) {
            double angle = Math.acos(0.95) + TIMES[i] * (Math.acos(0.02) - Math.acos(0.95));
            assertEquals(Math.cos(angle), rates.signal()[i], 1e-6, "signal at t=" + TIMES[i]);
            assertEquals(Math.sin(angle), rates.noise()[i], 1e-6, "noise at t=" + TIMES[i]);
        }
    }

    @Test
    void linearMatchesClosedForm() {
        Schedule.Rates rates = Schedule.linear().rates(TIMES);
        double[] alphaBar = new double[1000];
        double product = 1;
        for (int i = 0; i < 1000; i++) {
            product *= 1 - (1e-4 + (0.02 - 1e-4) * i / 999.0);
            alphaBar[i] = product;
        }
        // Both ends are clamped to the signal bounds; t = 0.5 interpolates between entries 499 and 500.
        double[] expected = {0.95, Math.sqrt((alphaBar[499] + alphaBar[500]) / 2), 0.02};
        for (int i = 0; i < TIMES.length; i++) {
            assertEquals(expected[i], rates.signal()[i], 1e-6, "signal at t=" + TIMES[i]);
            assertEquals(Math.sqrt(1 - expected[i] * expected[i]), rates.noise()[i], 1e-6, "noise at t=" + TIMES[i]);
        }
    }

    @Test
    void timesOutsideTheUnitIntervalAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> Schedule.cosine().rates(1.5f));
        assertThrows(IllegalArgumentException.class, () -> Schedule.cosine().rates(Float.NaN));
        assertEquals(0, Schedule.cosine().rates().signal().length);
    }
}
