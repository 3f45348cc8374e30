package io.sheepdog.dog;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class GetoptTest {
    static final List<Getopt.Spec> SPECS = List.of(new Getopt.Spec('a', "address", true), new Getopt.Spec('p', "port", true),
            new Getopt.Spec('r', "raw", false), new Getopt.Spec('v', "verbose", false), new Getopt.Spec('s', "snapshot", true),
            new Getopt.Spec('R', "reduce-identical-snapshots", false), new Getopt.Spec('B', "nr-batched-reclamation", true));

    record Parsed(Map<Character, String> opts, List<String> args) { }

    static Parsed parse(String... a) throws Getopt.Error {
        Map<Character, String> o = new HashMap<>();
        List<String> p = new ArrayList<>();
        Getopt.parse(a, SPECS, o, p);
        return new Parsed(o, p);
    }

    static String error(String... a) {
        return assertThrows(Getopt.Error.class, () -> parse(a)).getMessage();
    }

    @Test
    void mixesOptionsAndArguments() throws Exception {
        Parsed p = parse("test", "-s", "snap1", "0", "-rv", "512", "-p7001", "--address=10.0.0.1", "--", "-r", "x");
        assertEquals(List.of("test", "0", "512", "-r", "x"), p.args());
        assertEquals(Map.of('s', "snap1", 'r', "", 'v', "", 'p', "7001", 'a', "10.0.0.1"), p.opts());
    }

    @Test
    void longOptionsMayBeAbbreviated() throws Exception {
        assertEquals("7000", parse("--po", "7000").opts().get('p'));
        assertEquals("", parse("--red").opts().get('R'));
        assertEquals("128", parse("--nr=128").opts().get('B'));
        assertEquals("-x", parse("-s", "-x").opts().get('s'), "an option's argument may start with a dash");
        assertEquals("2", parse("-p", "1", "-p", "2").opts().get('p'), "the last one wins");
        assertEquals(List.of("-"), parse("-").args());
    }

    @Test
    void errorsUseGlibcWording() {
        assertEquals("invalid option -- 'x'", error("-x"));
        assertEquals("invalid option -- 'x'", error("-rx"));
        assertEquals("option requires an argument -- 'p'", error("-p"));
        assertEquals("option requires an argument -- 's'", error("-rs"));
        assertEquals("unrecognized option '--bogus'", error("--bogus"));
        assertEquals("option '--raw' doesn't allow an argument", error("--raw=1"));
        assertEquals("option '--port' requires an argument", error("--port"));
        assertEquals("option '--r' is ambiguous; possibilities: '--raw' '--reduce-identical-snapshots'", error("--r"));
    }
}
