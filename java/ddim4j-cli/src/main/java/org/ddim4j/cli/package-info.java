/** The {@code ddim} command line (picocli): one class per subcommand. */
package org.ddim4j.cli;
