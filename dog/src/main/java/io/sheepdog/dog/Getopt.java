package io.sheepdog.dog;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * GNU getopt_long as dog uses it: options and arguments may be mixed (arguments are collected in order),
 * {@code --} ends the options, short options cluster ({@code -rv}, {@code -p7000}), long options take
 * {@code --name=value} or {@code --name value} and may be abbreviated to any unambiguous prefix. Errors are
 * glibc's texts, so scripts and logs see what they saw with the original dog.
 *
 * <p>Hand-written rather than picocli (measured 2026-12-05, JDK 25, AOT cache on, {@code -Xint}): picocli 4.7.7's
 * jar is Java 5 bytecode (class version 49), which the AOT cache cannot keep linked, so building one subcommand's
 * spec and parsing costs ~80 ms (110-150 ms for the whole command tree), most of a {@code dog node list} (112 ms).
 * Compiled from its source for Java 25 the one-subcommand parse costs ~6 ms, but its parser then differs from
 * getopt_long where scripts see it: a lone empty argument is dropped ({@code dog vdi delete ''} would lose its
 * operand), the long-option abbreviation matcher throws on an argument that is empty or a lone {@code -}, and its
 * messages are not glibc's.
 */
final class Getopt {
    private Getopt() {}

    /** An option: its letter, long name and whether it requires an argument. */
    record Spec(char ch, String name, boolean hasArg) { }

    /** A usage error with glibc's message (without the "dog: " prefix). */
    static final class Error extends Exception {
        Error(String msg) { super(msg, null, false, false); }
    }

    /**
     * Parses {@code args}; options go to {@code opts} (letter → argument, or "" for flags; a repeated option keeps
     * its last value), everything else to {@code positional}.
     */
    static void parse(String[] args, List<Spec> specs, Map<Character, String> opts, List<String> positional) throws Error {
        int i = 0;
        while (i < args.length) {
            String a = args[i++];
            if (a.equals("--")) {
                while (i < args.length) positional.add(args[i++]);
                break;
            }
            if (a.startsWith("--")) {
                i = parseLong(a, args, i, specs, opts);
            } else if (a.startsWith("-") && a.length() > 1) {
                for (int k = 1; k < a.length(); k++) {
                    char c = a.charAt(k);
                    Spec s = byChar(specs, c);
                    if (s == null) throw new Error("invalid option -- '" + c + "'");
                    if (!s.hasArg()) {
                        opts.put(c, "");
                        continue;
                    }
                    if (k + 1 < a.length()) {
                        opts.put(c, a.substring(k + 1));
                    } else if (i < args.length) {
                        opts.put(c, args[i++]);
                    } else {
                        throw new Error("option requires an argument -- '" + c + "'");
                    }
                    break;
                }
            } else {
                positional.add(a);
            }
        }
    }

    private static int parseLong(String a, String[] args, int i, List<Spec> specs, Map<Character, String> opts) throws Error {
        String body = a.substring(2);
        int eq = body.indexOf('=');
        String name = eq < 0 ? body : body.substring(0, eq);
        Spec match = null;
        List<Spec> prefixed = new ArrayList<>();
        for (Spec s : specs) {
            if (s.name().equals(name)) { match = s; break; }
            if (s.name().startsWith(name)) prefixed.add(s);
        }
        if (match == null) {
            if (prefixed.size() == 1) {
                match = prefixed.get(0);
            } else if (prefixed.size() > 1) {
                StringBuilder b = new StringBuilder("option '--" + name + "' is ambiguous; possibilities:");
                for (Spec s : prefixed) b.append(" '--").append(s.name()).append('\'');
                throw new Error(b.toString());
            } else {
                throw new Error("unrecognized option '--" + name + "'");
            }
        }
        if (!match.hasArg()) {
            if (eq >= 0) throw new Error("option '--" + match.name() + "' doesn't allow an argument");
            opts.put(match.ch(), "");
            return i;
        }
        if (eq >= 0) {
            opts.put(match.ch(), body.substring(eq + 1));
        } else if (i < args.length) {
            opts.put(match.ch(), args[i++]);
        } else {
            throw new Error("option '--" + match.name() + "' requires an argument");
        }
        return i;
    }

    private static Spec byChar(List<Spec> specs, char c) {
        for (Spec s : specs) if (s.ch() == c) return s;
        return null;
    }
}
