package org.ddim4j.serve;

import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

import com.fasterxml.jackson.databind.JsonNode;

import org.ddim4j.ModelConfig;
import org.ddim4j.SampleOptions;
import org.ddim4j.Sampler;

/**
 * Turns a request's fields (a JSON object, or a stream's query string) into {@link SampleOptions},
 * checking each one against the server's caps. Every failure is a {@link HttpError} with status 400
 * and a message that names the field.
 */
final class SampleRequests {
    static final Set<String> SAMPLE_FIELDS = Set.of("count", "steps", "seed", "firstIndex", "sampler", "eta", "class", "classes", "guidance");
    static final Set<String> INTERPOLATION_FIELDS = Set.of("from", "to", "frames", "steps", "class", "guidance");
    /** The one field that may hold several values: a JSON array, or a repeated query parameter. */
    private static final String LIST_FIELD = "classes";

    private SampleRequests() {}

    /** The fields of a JSON object body, as text; "classes" as a list. */
    static Map<String, List<String>> fromJson(JsonNode body) {
        if (body == null || !body.isObject()) {
            throw HttpError.badRequest("the body must be a JSON object, e.g. {\"count\": 4, \"seed\": 7}");
        }
        Map<String, List<String>> fields = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = body.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> field = it.next();
            JsonNode value = field.getValue();
            if (field.getKey().equals(LIST_FIELD)) {
                if (!value.isArray()) {
                    throw HttpError.badRequest("'classes' must be a list of class indexes or names, one per image");
                }
                List<String> values = new ArrayList<>();
                for (JsonNode element : value) {
                    if (!element.isValueNode() || element.isNull()) {
                        throw HttpError.badRequest("each of 'classes' must be a class index or name");
                    }
                    values.add(element.asText());
                }
                fields.put(LIST_FIELD, values);
            } else if (!value.isValueNode() || value.isNull()) {
                throw HttpError.badRequest("'" + field.getKey() + "' must be a number or a string");
            } else {
                fields.put(field.getKey(), List.of(value.asText()));
            }
        }
        return fields;
    }

    /** The fields of a query string ({@code count=4&seed=7}); {@code classes} may repeat ({@code classes=0&classes=7}). */
    static Map<String, List<String>> fromQuery(String query) {
        Map<String, List<String>> fields = new LinkedHashMap<>();
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
            List<String> values = fields.computeIfAbsent(name, key -> new ArrayList<>());
            if (!values.isEmpty() && !name.equals(LIST_FIELD)) {
                throw HttpError.badRequest("'" + name + "' is given twice");
            }
            values.add(value);
        }
        return fields;
    }

    /**
     * A sample request: count, steps, seed, firstIndex, sampler, eta, and for class models class (one for every
     * image) or classes (one per image) and guidance, each optional (SampleOptions' defaults).
     */
    static SampleOptions sampleOptions(Map<String, List<String>> fields, ServeSettings settings, ModelConfig model) {
        requireKnown(fields, SAMPLE_FIELDS);
        SampleOptions.Builder options = SampleOptions.builder();
        List<Integer> classes = classes(fields, settings, model);
        int fallbackCount = classes.size() > 1 ? classes.size() : Math.min(SampleOptions.DEFAULT_COUNT, settings.maxCount());
        int count = intField(fields, "count", fallbackCount, 1, settings.maxCount());
        if (classes.size() > 1 && count != classes.size()) {
            throw HttpError.badRequest("'classes' holds " + classes.size() + " classes but 'count' is " + count
                    + ": give one class per image, or 'class' for all of them");
        }
        int steps = steps(fields, settings);
        options.count(count).steps(steps).seed(longField(fields, "seed", SampleOptions.DEFAULT_SEED, Long.MIN_VALUE, Long.MAX_VALUE))
                .firstIndex(longField(fields, "firstIndex", 0, 0, SampleOptions.MAX_FIRST_INDEX))
                .classes(classes).guidance(guidance(fields, classes));
        String sampler = single(fields, "sampler");
        if (sampler != null) {
            try {
                options.sampler(Sampler.valueOf(sampler.toUpperCase(Locale.ROOT)));
            } catch (IllegalArgumentException e) {
                throw HttpError.badRequest("'sampler' must be one of DDIM, DDPM, DPM_SOLVER_PP_2M, got '" + sampler + "'");
            }
        }
        String eta = single(fields, "eta");
        if (eta != null) {
            double value = parse("eta", eta, Double::parseDouble);
            if (!(value >= 0 && value <= SampleOptions.MAX_ETA)) {
                throw HttpError.badRequest("'eta' must lie in [0, " + SampleOptions.MAX_ETA + "], got " + eta);
            }
            options.eta(value);
        }
        return options.build();
    }

    /**
     * The classes a request names: "class" (a class index or name, for every image) or "classes" (one per image);
     * empty when it names none. Names are matched as {@link ModelConfig#classIndex(String)} matches them.
     */
    static List<Integer> classes(Map<String, List<String>> fields, ServeSettings settings, ModelConfig model) {
        List<String> one = fields.get("class");
        List<String> each = fields.get(LIST_FIELD);
        if (one != null && each != null) {
            throw HttpError.badRequest("give 'class' (for every image) or 'classes' (one per image), not both");
        }
        List<String> names = one != null ? one : each;
        if (names == null) {
            return List.of();
        }
        if (!model.isClassConditional()) {
            throw HttpError.badRequest("this model is unconditional: it takes no 'class' or 'classes'");
        }
        if (names.isEmpty() || names.size() > settings.maxCount()) {
            throw HttpError.badRequest("'classes' must hold 1 to " + settings.maxCount() + " classes, got " + names.size());
        }
        List<Integer> classes = new ArrayList<>(names.size());
        for (String name : names) {
            try {
                classes.add(model.classIndex(name));
            } catch (IllegalArgumentException e) {
                throw HttpError.badRequest(e.getMessage());
            }
        }
        return classes;
    }

    /** The "guidance" field in [0, MAX_GUIDANCE] (1 when absent); it weighs a class against no class, so it needs one. */
    static double guidance(Map<String, List<String>> fields, List<Integer> classes) {
        String text = single(fields, "guidance");
        if (text == null) {
            return 1;
        }
        double value = parse("guidance", text, Double::parseDouble);
        if (!(value >= 0 && value <= SampleOptions.MAX_GUIDANCE)) {
            throw HttpError.badRequest("'guidance' must lie in [0, " + SampleOptions.MAX_GUIDANCE + "], got " + text);
        }
        if (classes.isEmpty() && value != 1) {
            throw HttpError.badRequest("'guidance' needs 'class' or 'classes': it weighs the class against no class");
        }
        return value;
    }

    /** The "steps" field in [1, maxSteps]; SampleOptions' default (within the cap) when absent. */
    static int steps(Map<String, List<String>> fields, ServeSettings settings) {
        return intField(fields, "steps", Math.min(SampleOptions.DEFAULT_STEPS, settings.maxSteps()), 1, settings.maxSteps());
    }

    /** An integer field in [min, max], or {@code fallback} when absent. */
    static int intField(Map<String, List<String>> fields, String name, int fallback, int min, int max) {
        return (int) longField(fields, name, fallback, min, max);
    }

    /** A long field in [min, max], or {@code fallback} when absent. */
    static long longField(Map<String, List<String>> fields, String name, long fallback, long min, long max) {
        String text = single(fields, name);
        if (text == null) {
            return fallback;
        }
        long value = parse(name, text, Long::parseLong);
        if (value < min || value > max) {
            throw HttpError.badRequest("'" + name + "' must lie in [" + min + ", " + max + "], got " + value);
        }
        return value;
    }

    /** A field's one value, or null when absent. */
    private static String single(Map<String, List<String>> fields, String name) {
        List<String> values = fields.get(name);
        return values == null ? null : values.getFirst();
    }

    static void requireKnown(Map<String, List<String>> fields, Set<String> known) {
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
