package org.ddim4j;

/** A fresh JVM's first use of the library, for NativeLibraryTest: prints the native version, or why it did not load. */
public final class PrintVersion {
    private PrintVersion() {}

    public static void main(String[] args) {
        try {
            System.out.println("ddim4j " + Ddim.version() + " (libtorch " + Ddim.torchVersion() + ")");
        } catch (DdimException e) {
            System.out.println(e.getMessage());
            System.exit(1);
        }
    }
}
