package org.ddim4j.cli;

import java.io.PrintWriter;

import org.ddim4j.DdimException;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code ddim} command line (launched by scripts/ddim). */
@Command(
        name = "ddim",
        mixinStandardHelpOptions = true,
        versionProvider = VersionProvider.class,
        description = "Train and sample DDIM diffusion image models.",
        subcommands = {DemoCommand.class, TrainCommand.class, SampleCommand.class, InvertCommand.class,
                InterpolateCommand.class, InpaintCommand.class, VaryCommand.class, EvalCommand.class, PlotCommand.class,
                LrFindCommand.class, InfoCommand.class, InitCommand.class, ExportCommand.class,
                CommandLine.HelpCommand.class})
public final class Main {
    public static void main(String[] args) {
        System.setProperty("java.awt.headless", "true");
        System.exit(run(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
    }

    /** Runs the CLI and returns its exit code (for tests and embedding). */
    public static int run(String[] args, PrintWriter out, PrintWriter err) {
        CommandLine commandLine = new CommandLine(new Main());
        commandLine.setOut(out);
        commandLine.setErr(err);
        commandLine.setCaseInsensitiveEnumValuesAllowed(true);
        // Library failures are the user's input problems far more often than bugs: one clear line, no trace.
        commandLine.setExecutionExceptionHandler((exception, cmd, parseResult) -> {
            if (exception instanceof DdimException || exception instanceof IllegalArgumentException
                    || exception instanceof java.io.UncheckedIOException) {
                cmd.getErr().println("ddim: " + exception.getMessage());
                return 1;
            }
            throw exception;
        });
        return commandLine.execute(args);
    }
}
