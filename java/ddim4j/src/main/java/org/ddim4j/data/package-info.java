/** Training data: image folders, IDX files and Fashion-MNIST as {@link org.ddim4j.data.Dataset}s of NCHW pixels in [0, 1]. */
package org.ddim4j.data;
