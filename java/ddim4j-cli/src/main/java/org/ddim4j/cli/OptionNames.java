package org.ddim4j.cli;

import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The library checks its options and names its own fields ("learningRate must be ..."); a CLI user
 * knows the flag. Maps the field a message starts with to the option that sets it.
 */
final class OptionNames {
    private static final Map<String, String> OPTION_OF_FIELD = Map.ofEntries(
            Map.entry("count", "--count"),
            Map.entry("steps", "--steps"),
            Map.entry("eta", "--eta"),
            Map.entry("firstIndex", "--first-index"),
            Map.entry("batchSize", "--batch-size"),
            Map.entry("microBatch", "--micro-batch"),
            Map.entry("epochs", "--epochs"),
            Map.entry("learningRate", "--lr"),
            Map.entry("weightDecay", "--weight-decay"),
            Map.entry("emaDecay", "--ema"),
            Map.entry("checkpointEvery", "--checkpoint-every"),
            Map.entry("validationSplit", "--validation-split"),
            Map.entry("threads", "--threads"),
            Map.entry("limit", "--limit"),
            Map.entry("channels", "--channels"),
            Map.entry("imageSize", "--image-size"),
            Map.entry("blockDepth", "--block-depth"),
            Map.entry("embeddingDim", "--embedding-dim"),
            Map.entry("widths", "--widths"),
            Map.entry("image_size", "--image-size"),
            Map.entry("block_depth", "--block-depth"),
            Map.entry("embedding_dim", "--embedding-dim"),
            Map.entry("min_signal", "--min-signal"),
            Map.entry("max_signal", "--max-signal"));
    /** A field at the start of a message, or after the native config check's prefix. */
    private static final Pattern LEADING_FIELD = Pattern.compile("^(?:invalid model config: )?(\\w+)( must| is| has)\\b");

    private OptionNames() {}

    /** {@code message} with a leading library field name replaced by its option, e.g. "--lr must be finite and > 0". */
    static String inMessage(String message) {
        Matcher matcher = LEADING_FIELD.matcher(message);
        if (matcher.find() && OPTION_OF_FIELD.containsKey(matcher.group(1))) {
            return OPTION_OF_FIELD.get(matcher.group(1)) + message.substring(matcher.end(1));
        }
        return message;
    }
}
