package org.ddim4j;

import java.io.IOException;
import java.lang.foreign.AddressLayout;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.GroupLayout;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.PaddingLayout;
import java.lang.foreign.SequenceLayout;
import java.lang.foreign.StructLayout;
import java.lang.foreign.UnionLayout;
import java.lang.foreign.ValueLayout;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.net.URISyntaxException;
import java.nio.file.FileSystem;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.BiConsumer;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * What one side says about the ABI of include/ddim.h: the C compiler, through the output of
 * native/tests/abi_layout.c (its format is described there), or the jextract bindings in
 * org.ddim4j.ffi, read by reflection. A type is a kind and a size in bytes ("int4", "float8",
 * "ptr8", "struct80", "int4[8]", "void"): what a binding has to reproduce, since jextract's layouts
 * keep neither signedness nor pointee types.
 */
final class AbiFacts {
    record Field(String name, long offset, long size, long align, String type) {}

    record Struct(String kind, long size, long align, List<Field> fields) {}

    /** A value as text: a decimal integer already cut to the constant's width, a double, or a string. */
    record Constant(String type, String value) {}

    /** Null fields: the bindings declare it but could not describe it (see {@link #errors}). */
    record Signature(String returns, List<String> parameters) {}

    String headerSha256 = "";
    final Map<String, Struct> structs = new TreeMap<>();
    final Map<String, Constant> constants = new TreeMap<>();
    final Map<String, Signature> functions = new TreeMap<>();
    final Map<String, Signature> callbacks = new TreeMap<>();
    final Map<String, String> typedefs = new TreeMap<>();
    /** What this side could not state: the C program's error lines, bindings that failed to load. */
    final List<String> errors = new ArrayList<>();

    private static final Pattern HEADER = Pattern.compile("header sha256 (\\p{XDigit}+)");
    private static final Pattern STRUCT = Pattern.compile("(struct|union) (\\w+) size (\\d+) align (\\d+)");
    private static final Pattern FIELD =
            Pattern.compile("field (\\w+)\\.(\\w+) offset (\\d+) size (\\d+) align (\\d+) type (\\S+)");
    private static final Pattern NUMBER_CONSTANT = Pattern.compile("const (\\w+) ((?:u?int|float)\\d+) (\\S+)");
    private static final Pattern STRING_CONSTANT = Pattern.compile("const (\\w+) string (.*)");
    private static final Pattern SIGNATURE =
            Pattern.compile("(function|callback) (\\w+) args (\\d+) returns (\\S+) params((?: \\S+)*)");
    private static final Pattern TYPEDEF = Pattern.compile("typedef (\\w+) type (\\S+)");

    /** Reads the output of build/ddim_abi_layout. */
    static AbiFacts parseCompilerOutput(String output) {
        AbiFacts facts = new AbiFacts();
        List<String> lines = output.lines().toList();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            Matcher m;
            if (line.isBlank()) {
                continue;
            } else if (line.startsWith("error ")) {
                facts.errors.add(line.substring("error ".length()));
            } else if ((m = HEADER.matcher(line)).matches()) {
                facts.headerSha256 = m.group(1);
            } else if ((m = STRUCT.matcher(line)).matches()) {
                facts.structs.put(m.group(2), new Struct(m.group(1), Long.parseLong(m.group(3)),
                        Long.parseLong(m.group(4)), new ArrayList<>()));
            } else if ((m = FIELD.matcher(line)).matches() && facts.structs.containsKey(m.group(1))) {
                facts.structs.get(m.group(1)).fields().add(new Field(m.group(2), Long.parseLong(m.group(3)),
                        Long.parseLong(m.group(4)), Long.parseLong(m.group(5)), signless(m.group(6))));
            } else if ((m = NUMBER_CONSTANT.matcher(line)).matches()) {
                String type = signless(m.group(2));
                facts.constants.put(m.group(1), new Constant(type, numberText(type, m.group(3))));
            } else if ((m = STRING_CONSTANT.matcher(line)).matches()) {
                facts.constants.put(m.group(1), new Constant("string", m.group(2)));
            } else if ((m = SIGNATURE.matcher(line)).matches()
                    && countParameters(m.group(5)) == Integer.parseInt(m.group(3))) {
                List<String> parameters = Arrays.stream(m.group(5).strip().split(" "))
                        .filter(p -> !p.isEmpty()).map(AbiFacts::signless).toList();
                Signature signature = new Signature(signless(m.group(4)), parameters);
                (m.group(1).equals("function") ? facts.functions : facts.callbacks).put(m.group(2), signature);
            } else if ((m = TYPEDEF.matcher(line)).matches()) {
                facts.typedefs.put(m.group(1), signless(m.group(2)));
            } else {
                throw new IllegalArgumentException("line " + (i + 1) + " of the C compiler's output: cannot read '"
                        + line + "' (native/tests/abi_layout.c and AbiFacts disagree on the format)");
            }
        }
        return facts;
    }

    private static int countParameters(String parameters) {
        return parameters.isBlank() ? 0 : parameters.strip().split(" ").length;
    }

    /** "uint8" -> "int8": a Java layout has no signedness to compare. */
    private static String signless(String type) {
        return type.startsWith("uint") ? type.substring(1) : type;
    }

    /** A C value as its Java binding holds it: jextract casts a constant to its carrier's width. */
    private static String numberText(String type, String value) {
        return switch (type) {
            case "int1" -> Byte.toString((byte) Long.parseLong(value));
            case "int2" -> Short.toString((short) Long.parseLong(value));
            case "int4" -> Integer.toString((int) Long.parseLong(value));
            case "int8" -> Long.toString(Long.parseLong(value));
            default -> Double.toString(Double.parseDouble(value));
        };
    }

    /**
     * Where the C program's fields leave bytes that padding cannot explain: padding before a field is
     * shorter than the field's alignment, and at the end shorter than the struct's. Such bytes mean a
     * field that native/tests/abi_layout.cmake did not read from the header.
     */
    List<String> unexplainedBytes() {
        List<String> problems = new ArrayList<>();
        structs.forEach((name, struct) -> {
            long end = 0;
            for (Field field : struct.fields()) {
                long start = struct.kind().equals("union") ? 0 : end;
                if (field.offset() < start || field.offset() - start >= field.align()) {
                    problems.add(struct.kind() + " " + name + ": bytes " + start + ".." + field.offset() + " before field "
                            + field.name() + " are no field read from include/ddim.h");
                }
                end = Math.max(end, field.offset() + field.size());
            }
            if (struct.size() < end || struct.size() - end >= struct.align()) {
                problems.add(struct.kind() + " " + name + ": bytes " + end + ".." + struct.size()
                        + " at the end are no field read from include/ddim.h");
            }
        });
        return problems;
    }

    /**
     * Reads the bindings generated into {@code headerClass}'s package: struct classes (a static
     * {@code layout()}), callback classes (a static {@code descriptor()}), and the header class's
     * constants, {@code name$descriptor()} functions and typedef layouts. Function descriptors resolve
     * their symbols, so libddim.so must be loaded.
     */
    static AbiFacts readBindings(Class<?> headerClass) {
        AbiFacts facts = new AbiFacts();
        for (Class<?> type : packageClasses(headerClass)) {
            Method layout = staticMethod(type, "layout");
            Method descriptor = staticMethod(type, "descriptor");
            if (layout != null && GroupLayout.class.isAssignableFrom(layout.getReturnType())) {
                GroupLayout group = (GroupLayout) facts.invoke(layout);
                if (group != null) {
                    facts.structs.put(type.getSimpleName(), struct(group));
                }
            } else if (descriptor != null && descriptor.getReturnType() == FunctionDescriptor.class) {
                facts.callbacks.put(type.getSimpleName(), signature((FunctionDescriptor) facts.invoke(descriptor)));
            }
        }
        Set<String> names = Arrays.stream(headerClass.getMethods()).map(Method::getName)
                .collect(Collectors.toCollection(TreeSet::new));
        for (Method method : headerClass.getMethods()) {
            String name = method.getName();
            if (!Modifier.isStatic(method.getModifiers()) || method.getParameterCount() != 0) {
                continue;
            }
            if (name.endsWith("$descriptor") && method.getReturnType() == FunctionDescriptor.class) {
                String function = name.substring(0, name.length() - "$descriptor".length());
                facts.functions.put(function, signature((FunctionDescriptor) facts.invoke(method)));
            } else if (!name.contains("$") && !names.contains(name + "$descriptor") && !names.contains(name + "$segment")) {
                Constant constant = constant(facts.invoke(method));
                if (constant != null) {
                    facts.constants.put(name, constant);
                }
            }
        }
        for (java.lang.reflect.Field field : headerClass.getFields()) {
            // ddim_h$shared holds jextract's C_INT, C_POINTER...: layouts of C types, not of ddim.h's typedefs.
            if (Modifier.isStatic(field.getModifiers()) && MemoryLayout.class.isAssignableFrom(field.getType())
                    && !field.getDeclaringClass().getSimpleName().endsWith("$shared")) {
                try {
                    facts.typedefs.put(field.getName(), type((MemoryLayout) field.get(null)));
                } catch (IllegalAccessException e) {
                    facts.errors.add(field + ": " + e);
                }
            }
        }
        return facts;
    }

    private Object invoke(Method method) {
        try {
            return method.invoke(null);
        } catch (InvocationTargetException | ExceptionInInitializerError e) {
            Throwable cause = e.getCause() instanceof ExceptionInInitializerError init ? init.getCause() : e.getCause();
            errors.add(method.getDeclaringClass().getSimpleName() + "." + method.getName() + "() failed: " + cause);
            return null;
        } catch (IllegalAccessException e) {
            errors.add(method + ": " + e);
            return null;
        }
    }

    private static Method staticMethod(Class<?> type, String name) {
        try {
            Method method = type.getMethod(name);
            return Modifier.isStatic(method.getModifiers()) ? method : null;
        } catch (NoSuchMethodException e) {
            return null;
        }
    }

    private static Struct struct(GroupLayout group) {
        List<Field> fields = new ArrayList<>();
        for (MemoryLayout member : group.memberLayouts()) {
            if (member instanceof PaddingLayout) {
                continue;
            }
            String name = member.name().orElse("?");
            long offset = group.byteOffset(MemoryLayout.PathElement.groupElement(name));
            fields.add(new Field(name, offset, member.byteSize(), member.byteAlignment(), type(member)));
        }
        String kind = group instanceof UnionLayout ? "union" : "struct";
        return new Struct(kind, group.byteSize(), group.byteAlignment(), fields);
    }

    private static Signature signature(FunctionDescriptor descriptor) {
        if (descriptor == null) {
            return new Signature(null, null);
        }
        return new Signature(descriptor.returnLayout().map(AbiFacts::type).orElse("void"),
                descriptor.argumentLayouts().stream().map(AbiFacts::type).toList());
    }

    private static Constant constant(Object value) {
        return switch (value) {
            case null -> null;
            case Integer i -> new Constant("int4", i.toString());
            case Long l -> new Constant("int8", l.toString());
            case Short s -> new Constant("int2", s.toString());
            case Byte b -> new Constant("int1", b.toString());
            case Character c -> new Constant("int2", Integer.toString(c));
            case Float f -> new Constant("float4", Double.toString(f));
            case Double d -> new Constant("float8", d.toString());
            case MemorySegment s -> new Constant("string", s.getString(0));
            default -> null;
        };
    }

    static String type(MemoryLayout layout) {
        return switch (layout) {
            case AddressLayout a -> "ptr" + a.byteSize();
            case ValueLayout v when v.carrier() == float.class || v.carrier() == double.class -> "float" + v.byteSize();
            case ValueLayout v -> "int" + v.byteSize();
            case SequenceLayout s -> type(s.elementLayout()) + "[" + s.elementCount() + "]";
            case StructLayout s -> "struct" + s.byteSize();
            case UnionLayout u -> "union" + u.byteSize();
            case PaddingLayout p -> "padding" + p.byteSize();
        };
    }

    /** The top-level classes of {@code anchor}'s package, from its class folder or jar, not initialised. */
    private static List<Class<?>> packageClasses(Class<?> anchor) {
        String folder = anchor.getPackageName().replace('.', '/');
        try {
            Path root = Path.of(anchor.getProtectionDomain().getCodeSource().getLocation().toURI());
            List<String> files;
            if (Files.isDirectory(root)) {
                files = list(root.resolve(folder));
            } else {
                try (FileSystem jar = FileSystems.newFileSystem(root)) {
                    files = list(jar.getPath(folder));
                }
            }
            List<Class<?>> classes = new ArrayList<>();
            for (String file : files) {
                if (file.endsWith(".class") && !file.contains("$")) {
                    String name = anchor.getPackageName() + "." + file.substring(0, file.length() - ".class".length());
                    classes.add(Class.forName(name, false, anchor.getClassLoader()));
                }
            }
            return classes;
        } catch (IOException | URISyntaxException | ClassNotFoundException e) {
            throw new IllegalStateException("cannot list the classes of " + anchor.getPackageName(), e);
        }
    }

    private static List<String> list(Path folder) throws IOException {
        try (Stream<Path> files = Files.list(folder)) {
            return files.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    /**
     * Every way the bindings differ from what the compiler says, one line each, naming the
     * declaration and where each side states it.
     */
    static List<String> differences(AbiFacts compiler, AbiFacts bindings) {
        List<String> out = new ArrayList<>();
        compare(s -> s.kind(), compiler.structs, bindings.structs, out, (name, pair) -> {
            Struct c = pair.compiler();
            Struct j = pair.bindings();
            String where = name + ".layout()";
            String what = c.kind() + " " + name;
            differ(out, what + ": kind", c.kind(), j.kind(), where);
            differ(out, what + ": size", c.size(), j.size(), where);
            differ(out, what + ": align", c.align(), j.align(), where);
            Map<String, Field> cFields = byName(c.fields());
            Map<String, Field> jFields = byName(j.fields());
            for (Field f : c.fields()) {
                Field g = jFields.get(f.name());
                String field = "field " + name + "." + f.name();
                if (g == null) {
                    out.add(field + " (offset " + f.offset() + ", " + f.type() + "): in include/ddim.h, not in " + where);
                    continue;
                }
                differ(out, field + ": offset", f.offset(), g.offset(), where);
                differ(out, field + ": size", f.size(), g.size(), where);
                differ(out, field + ": type", f.type(), g.type(), where);
            }
            for (Field g : j.fields()) {
                if (!cFields.containsKey(g.name())) {
                    out.add("field " + name + "." + g.name() + " (offset " + g.offset() + ", " + g.type()
                            + "): in " + where + ", not in include/ddim.h");
                }
            }
        });
        compare(x -> "constant", compiler.constants, bindings.constants, out, (name, pair) -> {
            String where = "ddim_h." + name + "()";
            differ(out, "constant " + name + ": type", pair.compiler().type(), pair.bindings().type(), where);
            if (pair.compiler().type().equals(pair.bindings().type())) {
                differ(out, "constant " + name + ":", pair.compiler().value(), pair.bindings().value(), where);
            }
        });
        compare(x -> "function", compiler.functions, bindings.functions, out,
                (name, pair) -> compareSignatures("function " + name, pair, "ddim_h." + name + "$descriptor()", out));
        compare(x -> "callback", compiler.callbacks, bindings.callbacks, out,
                (name, pair) -> compareSignatures("callback " + name, pair, name + ".descriptor()", out));
        compare(x -> "typedef", compiler.typedefs, bindings.typedefs, out,
                (name, pair) -> differ(out, "typedef " + name + ": type", pair.compiler(), pair.bindings(), "ddim_h." + name));
        return out;
    }

    private record Pair<T>(T compiler, T bindings) {}

    /** Reports names on one side only, and hands names on both to {@code both}. */
    private static <T> void compare(Function<T, String> kind, Map<String, T> compiler, Map<String, T> bindings,
            List<String> out, BiConsumer<String, Pair<T>> both) {
        Set<String> names = new TreeSet<>(compiler.keySet());
        names.addAll(bindings.keySet());
        for (String name : names) {
            T c = compiler.get(name);
            T j = bindings.get(name);
            if (j == null) {
                out.add(kind.apply(c) + " " + name + ": in include/ddim.h, not in org.ddim4j.ffi");
            } else if (c == null) {
                out.add(kind.apply(j) + " " + name + ": in org.ddim4j.ffi, not in include/ddim.h");
            } else {
                both.accept(name, new Pair<>(c, j));
            }
        }
    }

    private static void compareSignatures(String what, Pair<Signature> pair, String where, List<String> out) {
        Signature c = pair.compiler();
        Signature j = pair.bindings();
        if (j.parameters() == null) {
            return; // the bindings could not describe it: listed in their errors
        }
        differ(out, what + ": returns", c.returns(), j.returns(), where);
        if (c.parameters().size() != j.parameters().size()) {
            out.add(what + ": " + c.parameters().size() + " parameters " + c.parameters() + " in include/ddim.h, "
                    + j.parameters().size() + " " + j.parameters() + " in " + where);
            return;
        }
        for (int i = 0; i < c.parameters().size(); i++) {
            differ(out, what + ": parameter " + (i + 1), c.parameters().get(i), j.parameters().get(i), where);
        }
    }

    private static void differ(List<String> out, String what, Object compiler, Object bindings, String where) {
        if (!Objects.equals(compiler, bindings)) {
            out.add(what + " " + compiler + " in include/ddim.h, " + bindings + " in " + where);
        }
    }

    private static Map<String, Field> byName(List<Field> fields) {
        Map<String, Field> map = new TreeMap<>();
        fields.forEach(f -> map.put(f.name(), f));
        return map;
    }

    /** These facts in the C program's format: what it would print for a header that agrees with them. */
    String toCompilerOutput() {
        StringBuilder out = new StringBuilder(headerSha256.isEmpty() ? "" : "header sha256 " + headerSha256 + "\n");
        structs.forEach((name, s) -> {
            out.append(s.kind()).append(' ').append(name).append(" size ").append(s.size())
                    .append(" align ").append(s.align()).append('\n');
            for (Field f : s.fields()) {
                out.append("field ").append(name).append('.').append(f.name()).append(" offset ").append(f.offset())
                        .append(" size ").append(f.size()).append(" align ").append(f.align())
                        .append(" type ").append(f.type()).append('\n');
            }
        });
        constants.forEach((name, c) -> out.append("const ").append(name).append(' ').append(c.type()).append(' ')
                .append(c.value()).append('\n'));
        BiConsumer<String, Map<String, Signature>> signatures = (kind, map) -> map.forEach((name, s) -> out
                .append(kind).append(' ').append(name).append(" args ").append(s.parameters().size())
                .append(" returns ").append(s.returns()).append(" params")
                .append(s.parameters().stream().map(p -> " " + p).collect(Collectors.joining())).append('\n'));
        signatures.accept("function", functions);
        signatures.accept("callback", callbacks);
        typedefs.forEach((name, type) -> out.append("typedef ").append(name).append(" type ").append(type).append('\n'));
        errors.forEach(e -> out.append("error ").append(e).append('\n'));
        return out.toString();
    }
}
