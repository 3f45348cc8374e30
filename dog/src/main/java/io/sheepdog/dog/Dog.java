package io.sheepdog.dog;

import io.sheepdog.client.SheepdogException;
import io.sheepdog.proto.Proto;
import java.io.IOException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Parses a dog command line and runs the command. Returns the exit status instead of exiting, and never lets an
 * exception escape: every failure ends as one line on stderr and a non-zero status.
 */
final class Dog {
    private final Io io;
    private final Map<String, String> env;

    Dog(Io io, Map<String, String> env) {
        this.io = io;
        this.env = env;
    }

    int run(String[] argv) {
        long start = System.nanoTime();
        CommandTable.Sub sub = null;
        boolean timed = false;
        try {
            if (argv.length == 0 || argv[0].equals("help") || argv[0].equals("--help") || argv[0].equals("-h")) {
                CommandTable.printHelp(io.out);
                return ExitCodes.SUCCESS;
            }
            CommandTable.Family fam = CommandTable.family(argv[0]);
            if (fam == null) {
                io.err.println("Invalid command '" + argv[0] + "'");
                io.err.println("Try 'dog --help' for more information.");
                return ExitCodes.USAGE;
            }
            sub = argv.length > 1 ? CommandTable.find(argv[0], argv[1]) : null;
            if (sub == null) {
                if (argv.length > 1 && !argv[1].equals("help") && !argv[1].equals("--help") && !argv[1].equals("-h")) {
                    io.err.println("Invalid command '" + argv[0] + " " + argv[1] + "'");
                }
                io.err.println("Available " + fam.name() + " commands:");
                for (CommandTable.Sub s : fam.subs()) io.err.println("  " + fam.name() + " " + s.name());
                return ExitCodes.USAGE;
            }
            Map<Character, String> opts = new HashMap<>();
            List<String> args = new ArrayList<>();
            Integer bad = parse(sub, Arrays.copyOfRange(argv, 2, argv.length), opts, args);
            if (bad != null) return bad;
            if (opts.containsKey('h')) {
                CommandTable.printUsage(io.out, sub);
                return ExitCodes.SUCCESS;
            }
            timed = opts.containsKey('T');
            String host = env.getOrDefault("SHEEPDOG_DOG_ADDR", "127.0.0.1");
            String portText = env.get("SHEEPDOG_DOG_PORT");
            if (opts.containsKey('a')) host = opts.get('a');
            if (opts.containsKey('p')) portText = opts.get('p');
            if (!validAddress(host)) {
                io.err.println("Invalid ip address " + host);
                return ExitCodes.FAILURE;
            }
            int port = Proto.DEFAULT_PORT;
            if (portText != null) {
                port = parsePort(portText);
                if (port < 0) {
                    io.err.println("Invalid port number '" + portText + "'");
                    return ExitCodes.USAGE;
                }
            }
            try (Ctx ctx = new Ctx(io, sub, opts, args, host, port)) {
                if (sub.nodeList()) ctx.loadNodeList();
                if (sub.needArg() && args.isEmpty()) {
                    CommandTable.printUsage(io.out, sub);
                    return ExitCodes.USAGE;
                }
                int rc = Commands.run(ctx);
                if (rc == ExitCodes.USAGE) CommandTable.printUsage(io.out, sub);
                return rc;
            }
        } catch (DogExit e) {
            if (e.line != null) io.err.println(e.line);
            if (e.usage && sub != null) CommandTable.printUsage(io.out, sub);
            return e.code;
        } catch (SheepdogException e) {
            io.err.println(e.getMessage());
            return ExitCodes.FAILURE;
        } catch (IOException e) {
            // network failures: the daemon is down or went away
            io.err.println(e.getMessage());
            return ExitCodes.SYSFAIL;
        } catch (VdiIo.StdoutClosed e) {
            return ExitCodes.FAILURE; // nobody reads our output any more (e.g. `dog vdi read | head`)
        } catch (OutOfMemoryError e) {
            io.err.println("dog: out of memory");
            return ExitCodes.SYSFAIL;
        } catch (RuntimeException e) {
            io.err.println("dog: internal error: " + e);
            return ExitCodes.FAILURE;
        } finally {
            if (timed) {
                double secs = (System.nanoTime() - start) / 1e9;
                io.out.print("\nElapsed time: " + Fmt.fixed(secs, 3) + " seconds\n");
            }
        }
    }

    /**
     * Parses the subcommand's options (only the letters it accepts). Returns an exit status on a usage error,
     * after getopt's complaint and the hint, or null.
     */
    private Integer parse(CommandTable.Sub sub, String[] rest, Map<Character, String> opts, List<String> args) {
        List<Getopt.Spec> specs = new ArrayList<>();
        for (char ch : sub.opts().toCharArray()) {
            CommandTable.Opt o = CommandTable.opt(sub.family(), ch);
            specs.add(new Getopt.Spec(ch, o.name(), o.hasArg()));
        }
        try {
            Getopt.parse(rest, specs, opts, args);
            return null;
        } catch (Getopt.Error e) {
            io.err.println("dog: " + e.getMessage());
            io.err.println("Try 'dog --help' for more information.");
            return ExitCodes.USAGE;
        }
    }

    private static boolean validAddress(String host) {
        if (host.isEmpty()) return false;
        try {
            InetAddress.getByName(host);
            return true;
        } catch (UnknownHostException e) {
            return false;
        }
    }

    /** strtol-like: leading decimal digits, 1..65535; -1 if invalid. */
    static int parsePort(String s) {
        int i = 0;
        while (i < s.length() && Character.isWhitespace(s.charAt(i))) i++;
        int startDigits = i;
        long v = 0;
        while (i < s.length() && Character.isDigit(s.charAt(i)) && v <= 65536) v = v * 10 + (s.charAt(i++) - '0');
        if (i == startDigits || v < 1 || v > 65535) return -1;
        return (int) v;
    }
}
