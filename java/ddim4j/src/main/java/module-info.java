/**
 * ddim4j: train and sample DDIM (Denoising Diffusion Implicit Models) image models from Java.
 *
 * <p>{@link org.ddim4j.Ddim} opens or creates a model and samples it; {@link org.ddim4j.Trainer} trains it on a
 * {@link org.ddim4j.data.Dataset}. The compute runs in a bundled native library (C++ on libtorch) reached through
 * the Foreign Function &amp; Memory API; its generated bindings ({@code org.ddim4j.ffi}) stay inside this module.
 * Run with {@code --enable-native-access=org.ddim4j} on the module path ({@code ALL-UNNAMED} on the class path).
 */
module org.ddim4j {
    requires java.desktop;                  // ImageIO and BufferedImage: PNG output, image folders
    requires com.fasterxml.jackson.jr.ob;   // the training position stored in checkpoints
    requires jdk.security.auth;             // the user id that must own the native-library cache

    exports org.ddim4j;
    exports org.ddim4j.data;
}
