package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.io.IOException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

import org.ddim4j.ffi.ddim_h;
import org.junit.jupiter.api.Test;

/** Fails when include/ddim.h and the committed jextract bindings disagree: run scripts/jextract.sh. */
class BindingDriftTest {
    private static final Pattern DECLARATION = Pattern.compile("DDIM_API\\s+[^;(]*?\\b(ddim_\\w+)\\s*\\(");

    @Test
    void bindingsDeclareExactlyTheHeaderFunctions() throws IOException {
        Path header = Path.of(System.getProperty("ddim4j.repo", ".."), "include", "ddim.h");
        String text = Files.readString(header).replaceAll("(?s)/\\*.*?\\*/", "");
        Set<String> declared = new TreeSet<>();
        Matcher matcher = DECLARATION.matcher(text);
        while (matcher.find()) {
            declared.add(matcher.group(1));
        }
        assertFalse(declared.isEmpty(), "no functions found in " + header);

        // jextract emits, per function, a static method plus name$handle/$descriptor/$address helpers.
        Set<String> helpers = Arrays.stream(ddim_h.class.getMethods())
                .map(Method::getName)
                .filter(name -> name.endsWith("$handle"))
                .map(name -> name.substring(0, name.length() - "$handle".length()))
                .collect(Collectors.toCollection(TreeSet::new));
        Set<String> bound = Arrays.stream(ddim_h.class.getMethods())
                .filter(m -> Modifier.isStatic(m.getModifiers()) && helpers.contains(m.getName()))
                .map(Method::getName)
                .collect(Collectors.toCollection(TreeSet::new));
        assertEquals(declared, bound, "include/ddim.h and org.ddim4j.ffi differ: regenerate with scripts/jextract.sh");
    }
}
