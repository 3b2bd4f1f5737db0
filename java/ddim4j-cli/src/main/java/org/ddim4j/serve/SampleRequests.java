package org.ddim4j.serve;

import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

import com.fasterxml.jackson.databind.JsonNode;

import org.ddim4j.SampleOptions;
import org.ddim4j.Sampler;

/**
 * Turns a request's fields (a JSON object, or a stream's query string) into {@link SampleOptions},
 * checking each one against the server's caps. Every failure is a {@link HttpError} with status 400
 * and a message that names the field.
 */
final class SampleRequests {
    static final Set<String> SAMPLE_FIELDS = Set.of("count", "steps", "seed", "firstIndex", "sampler", "eta");
    static final Set<String> INTERPOLATION_FIELDS = Set.of("from", "to", "frames", "steps");

    private SampleRequests() {}

    /** The fields of a JSON object body, as text. */
    static Map<String, String> fromJson(JsonNode body) {
        if (body == null || !body.isObject()) {
            throw HttpError.badRequest("the body must be a JSON object, e.g. {\"count\": 4, \"seed\": 7}");
        }
        Map<String, String> fields = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = body.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> field = it.next();
            JsonNode value = field.getValue();
            if (!value.isValueNode() || value.isNull()) {
                throw HttpError.badRequest("'" + field.getKey() + "' must be a number or a string");
            }
            fields.put(field.getKey(), value.asText());
        }
        return fields;
    }

    /** The fields of a query string ({@code count=4&seed=7}). */
    static Map<String, String> fromQuery(String query) {
        Map<String, String> fields = new LinkedHashMap<>();
        if (query == null || query.isEmpty()) {
            return fields;
        }
        for (String pair : query.split("&")) {
            if (pair.isEmpty()) {
                continue;
            }
            int equals = pair.indexOf('=');
            String name = URLDecoder.decode(equals < 0 ? pair : pair.substring(0, equals), StandardCharsets.UTF_8);
            String value = equals < 0 ? "" : URLDecoder.decode(pair.substring(equals + 1), StandardCharsets.UTF_8);
            fields.put(name, value);
        }
        return fields;
    }

    /** A sample request: count, steps, seed, firstIndex, sampler and eta, each optional (SampleOptions' defaults). */
    static SampleOptions sampleOptions(Map<String, String> fields, ServeSettings settings) {
        requireKnown(fields, SAMPLE_FIELDS);
        SampleOptions.Builder options = SampleOptions.builder();
        int count = intField(fields, "count", Math.min(SampleOptions.DEFAULT_COUNT, settings.maxCount()), 1, settings.maxCount());
        int steps = steps(fields, settings);
        options.count(count).steps(steps).seed(longField(fields, "seed", SampleOptions.DEFAULT_SEED, Long.MIN_VALUE, Long.MAX_VALUE))
                .firstIndex(longField(fields, "firstIndex", 0, 0, SampleOptions.MAX_FIRST_INDEX));
        String sampler = fields.get("sampler");
        if (sampler != null) {
            try {
                options.sampler(Sampler.valueOf(sampler.toUpperCase(Locale.ROOT)));
            } catch (IllegalArgumentException e) {
                throw HttpError.badRequest("'sampler' must be one of DDIM, DDPM, DPM_SOLVER_PP_2M, got '" + sampler + "'");
            }
        }
        String eta = fields.get("eta");
        if (eta != null) {
            double value = parse("eta", eta, Double::parseDouble);
            if (!(value >= 0 && value <= SampleOptions.MAX_ETA)) {
                throw HttpError.badRequest("'eta' must lie in [0, " + SampleOptions.MAX_ETA + "], got " + eta);
            }
            options.eta(value);
        }
        return options.build();
    }

    /** The "steps" field in [1, maxSteps]; SampleOptions' default (within the cap) when absent. */
    static int steps(Map<String, String> fields, ServeSettings settings) {
        return intField(fields, "steps", Math.min(SampleOptions.DEFAULT_STEPS, settings.maxSteps()), 1, settings.maxSteps());
    }

        /** An integer field in [min, max], or {@code fallback} when absent. */
    static int intField(Map<String, String> fields, String name, int fallback, int min, int max) {
        return (int) longField(fields, name, fallback, min, max);
    }

    /** A long field in [min, max], or {@code fallback} when absent. */
    static long longField(Map<String, String> fields, String name, long fallback, long min, long max) {
        String text = fields.get(name);
        if (text == null) {
            return fallback;
        }
        long value = parse(name, text, Long::parseLong);
        if (value < min || value > max) {
            throw HttpError.badRequest("'" + name + "' must lie in [" + min + ", " + max + "], got " + value);
        }
        return value;
    }

    static void requireKnown(Map<String, String> fields, Set<String> known) {
        for (String name : fields.keySet()) {
            if (!known.contains(name)) {
                throw HttpError.badRequest("unknown field '" + name + "' (known: " + String.join(", ", known.stream().sorted().toList()) + ")");
            }
        }
    }

    private interface Parser<T> {
        T parse(String text);
    }

    private static <T> T parse(String name, String text, Parser<T> parser) {
        try {
            return parser.parse(text.strip());
        } catch (NumberFormatException e) {
            throw HttpError.badRequest("'" + name + "' must be a number, got '" + text + "'");
        }
    }
}
