#!/usr/bin/env python3
"""Turns the README's Java blocks marked <!-- consumer-check: NAME --> into one class, example.ReadmeSnippets,
with one method per block (its imports moved to the top), so that the snippets compile and run as printed:
`java ... example.ReadmeSnippets NAME`. Used by scripts/consumer-check.sh and scripts/natives-check.sh.

    readme_snippets.py README.md OUT.java
"""
import re
import sys

readme = open(sys.argv[1]).read()
blocks = re.findall(r"<!-- consumer-check: (\w+) -->\s*```java\n(.*?)```", readme, re.S)
if len(blocks) < 2:
    sys.exit("README.md: expected the sampling and training blocks marked <!-- consumer-check: NAME -->")
imports, methods = set(), []
for name, code in blocks:
    body = []
    for line in code.splitlines():
        (imports.add(line) if line.startswith("import ") else body.append("        " + line))
    methods.append("    static void %s() throws Exception {\n%s\n    }\n" % (name, "\n".join(body)))
calls = "".join('            case "%s" -> %s();\n' % (name, name) for name, _ in blocks)
open(sys.argv[2], "w").write("package example;\n\n" + "\n".join(sorted(imports)) + "\n\npublic final class ReadmeSnippets {\n"
    + "\n".join(methods) + "\n    public static void main(String[] args) throws Exception {\n        switch (args[0]) {\n" + calls
    + '            default -> throw new IllegalArgumentException(args[0]);\n        }\n    }\n}\n')
print("README snippets:", ", ".join(name for name, _ in blocks))
