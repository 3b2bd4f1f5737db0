package org.ddim4j.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.util.concurrent.CancellationException;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.Logger;

import org.ddim4j.DdimException;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code ddim} command line: {@code java -jar ddim4j-cli-VERSION.jar --help} (scripts/ddim launches it). */
@Command(
        name = "ddim",
        mixinStandardHelpOptions = true,
        versionProvider = VersionProvider.class,
        description = "Train and sample DDIM diffusion image models.",
        footer = {"", "Images are written as PNG (.png) or JPEG (.jpg, .jpeg), chosen by the file name; missing directories of an",
                "output file are created. Library messages: -Dddim4j.logLevel=INFO (or DEBUG) in DDIM_JAVA_OPTS shows more."},
        subcommands = {DemoCommand.class, TrainCommand.class, SampleCommand.class, InvertCommand.class,
                InterpolateCommand.class, InpaintCommand.class, VaryCommand.class, EvalCommand.class, PlotCommand.class,
                LrFindCommand.class, ServeCommand.class, InfoCommand.class, InitCommand.class, ExportCommand.class,
                CommandLine.HelpCommand.class})
public final class Main {
    /** Kept strongly: java.util.logging holds its loggers weakly, and a collected one would lose its level. */
    private static final Logger LIBRARY_LOG = Logger.getLogger("org.ddim4j");

    public static void main(String[] args) {
        System.setProperty("java.awt.headless", "true");
        configureLogging();
        System.exit(run(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
    }

    /**
     * The library's System.Logger messages, one line each ("ddim: WARNING: ..."), warnings and worse by default;
     * {@code -Dddim4j.logLevel=INFO} (or DEBUG as FINE, ...) shows what the library changed and decided.
     */
    private static void configureLogging() {
        if (System.getProperty("java.util.logging.SimpleFormatter.format") == null) {
            System.setProperty("java.util.logging.SimpleFormatter.format", "ddim: %4$s: %5$s%6$s%n");
        }
        String level = System.getProperty("ddim4j.logLevel", "WARNING");
        try {
            LIBRARY_LOG.setLevel(Level.parse(level.toUpperCase(java.util.Locale.ROOT).replace("DEBUG", "FINE")));
        } catch (IllegalArgumentException e) {
            LIBRARY_LOG.setLevel(Level.WARNING);
        }
        for (Handler handler : Logger.getLogger("").getHandlers()) {
            handler.setLevel(Level.ALL); // the console handler's own INFO floor would hide FINE
        }
    }

    /** Runs the CLI and returns its exit code (for tests and embedding). */
    public static int run(String[] args, PrintWriter out, PrintWriter err) {
        CommandLine commandLine = new CommandLine(new Main());
        commandLine.setOut(out);
        commandLine.setErr(err);
        commandLine.setCaseInsensitiveEnumValuesAllowed(true);
        // A usage error is one line and a pointer to --help, not the whole usage text.
        commandLine.setParameterExceptionHandler((exception, arguments) -> {
            CommandLine failed = exception.getCommandLine();
            failed.getErr().println("ddim: " + exception.getMessage());
            failed.getErr().println("Try '" + failed.getCommandSpec().qualifiedName() + " --help' for more information.");
            return failed.getCommandSpec().exitCodeOnInvalidInput();
        });
        // Library and file failures are the user's input problems far more often than bugs: one clear line, no trace.
        commandLine.setExecutionExceptionHandler((exception, cmd, parseResult) -> {
            String message = userMessage(exception);
            if (message == null) {
                throw exception;
            }
            cmd.getErr().println("ddim: " + message.strip().replaceAll("\\s*\\R\\s*", " ")); // e.g. Jackson's "\n at [Source: ...]"
            return 1;
        });
        return commandLine.execute(args);
    }

    /** The one line to show for an expected failure, or null for an exception that is a bug (its stack trace then helps). */
    static String userMessage(Exception failure) {
        return switch (failure) {
            case UncheckedIOException unchecked -> describe(unchecked);
            case IOException io -> describe(io);
            case CancellationException cancelled -> cancelled.getMessage() != null ? "cancelled: " + cancelled.getMessage() : "cancelled";
            case DdimException ddim -> ddim.getMessage();
            case IllegalArgumentException _ -> OptionNames.inMessage(orClassName(failure));
            case IllegalStateException _ -> orClassName(failure);
            default -> null;
        };
    }

    private static String describe(UncheckedIOException failure) {
        IOException cause = failure.getCause();
        if (failure.getMessage().equals(cause.toString())) {
            return describe(cause); // new UncheckedIOException(cause) adds nothing to its cause
        }
        return cause instanceof FileSystemException fileSystem && fileSystem.getReason() == null
                ? failure.getMessage() + " (" + reason(fileSystem) + ")"
                : failure.getMessage();
    }

    private static String describe(IOException failure) {
        // NoSuchFileException, AccessDeniedException and friends carry only the file name, and their type says what went wrong.
        return failure instanceof FileSystemException fileSystem && fileSystem.getReason() == null
                ? fileSystem.getMessage() + ": " + reason(fileSystem)
                : orClassName(failure);
    }

    private static String reason(FileSystemException failure) {
        return switch (failure) {
            case NoSuchFileException _ -> "no such file or directory";
            case AccessDeniedException _ -> "permission denied";
            case FileAlreadyExistsException _ -> "already exists";
            case NotDirectoryException _ -> "not a directory";
            case DirectoryNotEmptyException _ -> "directory not empty";
            default -> failure.getClass().getSimpleName();
        };
    }

    private static String orClassName(Exception failure) {
        String message = failure.getMessage();
        return message != null && !message.isBlank() ? message : failure.getClass().getSimpleName();
    }
}
