package org.ddim4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;

import org.ddim4j.ffi.ddim_h;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Fails when include/ddim.h and the committed jextract bindings disagree: run scripts/jextract.sh.
 *
 * <p>The C compiler's view comes from build/ddim_abi_layout (native/tests/abi_layout.c, built by
 * CMake): every struct's size, alignment and fields' offsets and sizes, every enum and #define
 * constant, every function's and callback's parameter and return types. The bindings' view comes from
 * the generated classes by reflection, so a new struct, constant or function is compared without
 * editing this test. {@code -Dddim4j.abiLayout=PROGRAM -Dddim4j.abiHeader=HEADER} point it at another
 * build and header.
 */
class BindingDriftTest {
    private static final String DRIFT = "include/ddim.h and org.ddim4j.ffi differ: regenerate with scripts/jextract.sh";
    private static final Path REPO = Path.of(System.getProperty("ddim4j.repo", ".."));

    private static AbiFacts bindings;

    @BeforeAll
    static void readBindings() {
        NativeLibrary.load(); // the function descriptors resolve their symbols in libddim.so
        bindings = AbiFacts.readBindings(ddim_h.class);
    }

    @Test
    void bindingsAgreeWithWhatTheCCompilerSays() throws Exception {
        Path program = Path.of(System.getProperty("ddim4j.abiLayout", REPO.resolve("build/ddim_abi_layout").toString()));
        Path header = Path.of(System.getProperty("ddim4j.abiHeader", REPO.resolve("include/ddim.h").toString()));
        assertTrue(Files.isExecutable(program), program + " not found: build it with"
                + " `cmake --build build --target ddim_abi_layout` (scripts/setup.sh does), with DDIM_BUILD_TESTS on");

        AbiFacts compiler = AbiFacts.parseCompilerOutput(run(program));
        assertFalse(compiler.functions.isEmpty(), program + " found no function in " + header);
        assertEquals(sha256(header), compiler.headerSha256, program + " was built from another version of " + header
                + ": rebuild it with `cmake --build build --target ddim_abi_layout`");
        List<String> unchecked = new ArrayList<>(compiler.errors);
        unchecked.addAll(compiler.unexplainedBytes());
        assertNone(unchecked, program + " cannot vouch for all of " + header + ":");
        assertNone(bindings.errors, "org.ddim4j.ffi cannot be read (is build/libddim.so built from " + header + "?):");
        assertNone(AbiFacts.differences(compiler, bindings), DRIFT);
    }

    // What the C program would print for a header the bindings match, doctored as a changed header would.

    @Test
    void agreeingOutputHasNoDifferences() {
        assertNone(AbiFacts.differences(AbiFacts.parseCompilerOutput(bindings.toCompilerOutput()), bindings), DRIFT);
    }

    @Test
    void findsAChangedFieldOffset() {
        Map.Entry<String, AbiFacts.Struct> struct = bindings.structs.entrySet().iterator().next();
        AbiFacts.Field last = struct.getValue().fields().getLast();
        String field = struct.getKey() + "." + last.name();
        long moved = last.offset() + last.size();
        assertFinds(line -> line.startsWith("field " + field + " ")
                        ? line.replace(" offset " + last.offset() + " ", " offset " + moved + " ") : line,
                "field " + field + ": offset " + moved + " in include/ddim.h, " + last.offset() + " in "
                        + struct.getKey() + ".layout()");
    }

    @Test
    void findsAnAddedField() {
        Map.Entry<String, AbiFacts.Struct> struct = bindings.structs.entrySet().iterator().next();
        String name = struct.getKey();
        long size = struct.getValue().size();
        long grown = size + struct.getValue().align();
        String added = "field " + name + ".added offset " + size + " size 1 align 1 type int1";
        assertFinds(line -> line.startsWith("struct " + name + " size ")
                        ? line.replace(" size " + size + " ", " size " + grown + " ") + "\n" + added : line,
                "struct " + name + ": size " + grown + " in include/ddim.h, " + size + " in " + name + ".layout()",
                "field " + name + ".added (offset " + size + ", int1): in include/ddim.h, not in " + name + ".layout()");
    }

    @Test
    void findsARemovedField() {
        Map.Entry<String, AbiFacts.Struct> struct = bindings.structs.entrySet().iterator().next();
        AbiFacts.Field first = struct.getValue().fields().getFirst();
        String field = struct.getKey() + "." + first.name();
        String doctored = doctor(line -> line.startsWith("field " + field + " ") ? "" : line);
        assertTrue(AbiFacts.differences(AbiFacts.parseCompilerOutput(doctored), bindings).contains("field " + field
                + " (offset 0, " + first.type() + "): in " + struct.getKey() + ".layout(), not in include/ddim.h"));
        // The C program's own check sees the hole too, before any comparison.
        assertTrue(AbiFacts.parseCompilerOutput(doctored).unexplainedBytes().stream()
                .anyMatch(p -> p.startsWith("struct " + struct.getKey() + ": bytes 0..")), doctored);
    }

    @Test
    void findsAChangedEnumValue() {
        String name = constantOfType("int4");
        String value = bindings.constants.get(name).value();
        String changed = Integer.toString(Integer.parseInt(value) + 1);
        assertFinds(line -> line.equals("const " + name + " int4 " + value) ? "const " + name + " int4 " + changed : line,
                "constant " + name + ": " + changed + " in include/ddim.h, " + value + " in ddim_h." + name + "()");
    }

    @Test
    void findsAConstantThatBecameWider() {
        String name = constantOfType("int4");
        String value = bindings.constants.get(name).value();
        assertFinds(line -> line.equals("const " + name + " int4 " + value) ? "const " + name + " int8 " + value : line,
                "constant " + name + ": type int8 in include/ddim.h, int4 in ddim_h." + name + "()");
    }

    @Test
    void findsAnAddedConstant() {
        String existing = constantOfType("int4");
        assertFinds(line -> line.startsWith("const " + existing + " ") ? line + "\nconst DDIM_ADDED int4 7" : line,
                "constant DDIM_ADDED: in include/ddim.h, not in org.ddim4j.ffi");
    }

    @Test
    void findsAChangedArity() {
        String name = functionWith("");
        AbiFacts.Signature signature = bindings.functions.get(name);
        List<String> fewer = signature.parameters().subList(0, signature.parameters().size() - 1);
        assertFinds(line -> line.startsWith("function " + name + " ")
                        ? "function " + name + " args " + fewer.size() + " returns " + signature.returns() + " params"
                                + String.join("", fewer.stream().map(p -> " " + p).toList())
                        : line,
                "function " + name + ": " + fewer.size() + " parameters " + fewer + " in include/ddim.h, "
                        + signature.parameters().size() + " " + signature.parameters() + " in ddim_h." + name
                        + "$descriptor()");
    }

    @Test
    void findsAWiderParameter() {
        String name = functionWith("int4");
        List<String> parameters = bindings.functions.get(name).parameters();
        int index = parameters.indexOf("int4");
        assertFinds(line -> {
            if (!line.startsWith("function " + name + " ")) {
                return line;
            }
            String[] words = line.split(" ");
            words[7 + index] = "int8"; // function NAME args N returns R params P1 ...
            return String.join(" ", words);
        }, "function " + name + ": parameter " + (index + 1) + " int8 in include/ddim.h, int4 in ddim_h." + name
                + "$descriptor()");
    }

    @Test
    void findsAChangedReturnType() {
        String name = functionWith("");
        String returns = bindings.functions.get(name).returns();
        String other = returns.equals("int8") ? "int4" : "int8";
        assertFinds(line -> line.startsWith("function " + name + " ") ? line.replace(" returns " + returns + " ",
                        " returns " + other + " ") : line,
                "function " + name + ": returns " + other + " in include/ddim.h, " + returns + " in ddim_h." + name
                        + "$descriptor()");
    }

    @Test
    void findsAddedAndRemovedFunctions() {
        String removed = functionWith("");
        assertFinds(line -> line.startsWith("function " + removed + " ") ? "function ddim_added args 0 returns void params"
                        : line,
                "function ddim_added: in include/ddim.h, not in org.ddim4j.ffi",
                "function " + removed + ": in org.ddim4j.ffi, not in include/ddim.h");
    }

    @Test
    void findsAChangedCallback() {
        assumeTrue(!bindings.callbacks.isEmpty(), "ddim.h declares no callback");
        String name = bindings.callbacks.keySet().iterator().next();
        AbiFacts.Signature signature = bindings.callbacks.get(name);
        int count = signature.parameters().size();
        assertFinds(line -> line.startsWith("callback " + name + " ")
                        ? line.replace(" args " + count + " ", " args " + (count + 1) + " ") + " int4" : line,
                "callback " + name + ": " + (count + 1) + " parameters");
    }

    @Test
    void reportsWhatTheCProgramCouldNotRead() {
        AbiFacts compiler = AbiFacts.parseCompilerOutput("error a declaration: 'int x' (extend native/tests/abi_layout.cmake)\n");
        assertEquals(List.of("a declaration: 'int x' (extend native/tests/abi_layout.cmake)"), compiler.errors);
    }

    /** Asserts that the doctored output differs from the bindings in at least `expected` (each a prefix). */
    private static void assertFinds(UnaryOperator<String> change, String... expected) {
        List<String> differences = AbiFacts.differences(AbiFacts.parseCompilerOutput(doctor(change)), bindings);
        for (String difference : expected) {
            assertTrue(differences.stream().anyMatch(d -> d.startsWith(difference)),
                    "not found: " + difference + "\namong: " + differences);
        }
    }

    private static String doctor(UnaryOperator<String> change) {
        String doctored = String.join("\n", bindings.toCompilerOutput().lines().map(change).toList());
        assertTrue(!doctored.equals(bindings.toCompilerOutput().strip()), "the change changed nothing");
        return doctored;
    }

    private static String constantOfType(String type) {
        return bindings.constants.entrySet().stream().filter(e -> e.getValue().type().equals(type))
                .map(Map.Entry::getKey).findFirst().orElseThrow();
    }

    /** A function with at least one parameter, and one of type `type` unless that is "". */
    private static String functionWith(String type) {
        return bindings.functions.entrySet().stream()
                .filter(e -> !e.getValue().parameters().isEmpty())
                .filter(e -> type.isEmpty() || e.getValue().parameters().contains(type))
                .map(Map.Entry::getKey).findFirst().orElseThrow();
    }

    private static void assertNone(List<String> problems, String headline) {
        if (!problems.isEmpty()) {
            fail(headline + "\n  " + String.join("\n  ", problems));
        }
    }

    private static String run(Path program) throws IOException, InterruptedException {
        Process process = new ProcessBuilder(program.toString()).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(process.waitFor(60, TimeUnit.SECONDS), program + " did not finish");
        assertEquals(0, process.exitValue(), program + " failed");
        return output;
    }

    private static String sha256(Path file) throws IOException, NoSuchAlgorithmException {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
    }
}
