package io.sheepdog.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * NBD over TLS with client certificates ({@code sheep --nbd-tls DIR --nbd-tls-allow NAMES}) with the clients people
 * use: qemu-io and qemu-img with {@code tls-creds-x509}, nbdcopy and nbdinfo with {@code nbds://}, and a VM that
 * boots from the VDI over TLS. A plain-text client, a client whose certificate another CA signed and one whose
 * certificate name is not allowed are all refused, and none of them changes a byte. The certificates are made here
 * with openssl, as an operator following QEMU's documentation would make them.
 */
@ExtendWith(MiniClusterExtension.class)
class NbdTlsIT {
    private static final int MiB = 1 << 20;

    @Test
    void tlsClientsGetInAndEveryOtherIsRefused() throws Exception {
        Tools.require("openssl");
        Tools.require("qemu-io");
        Tools.require("nbdcopy");
        Path tmp = Files.createTempDirectory("sdit-tls-");
        Path server = Files.createDirectories(tmp.resolve("server"));
        Path good = Files.createDirectories(tmp.resolve("client1"));
        Path other = Files.createDirectories(tmp.resolve("client2"));
        Path rogue = Files.createDirectories(tmp.resolve("rogue"));
        Path ca = ca(tmp.resolve("ca"), "sheepdog test CA");
        Path rogueCa = ca(tmp.resolve("rogue-ca"), "some other CA");
        // server: the layout QEMU's tls-creds-x509 (endpoint=server) reads; a PKCS#1 RSA key, as certtool writes it
        Files.copy(ca.resolve("ca-cert.pem"), server.resolve("ca-cert.pem"));
        issue(ca, server, "server", "localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth", true);
        for (Path[] p : new Path[][] {{good, ca}, {other, ca}, {rogue, rogueCa}}) {
            Files.copy(p[1].resolve("ca-cert.pem"), p[0].resolve("ca-cert.pem"));
        }
        // clients (endpoint=client) trust our CA; the rogue one's certificate is signed by another CA
        Files.copy(ca.resolve("ca-cert.pem"), rogue.resolve("ca-cert.pem"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        issue(ca, good, "client", "client1", "extendedKeyUsage=clientAuth", false);
        issue(ca, other, "client", "client2", "extendedKeyUsage=clientAuth", false);
        issue(rogueCa, rogue, "client", "client1", "extendedKeyUsage=clientAuth", false);

        try (MiniCluster c = MiniCluster.builder().name("tls").nodes(1).copies(1)
                .sheepArgs("--nbd-tls", server.toString(), "--nbd-tls-allow", "client1").build().start()) {
            c.dog("vdi", "create", "v", "16M").assertOk();
            int port = c.node(0).nbdPort();
            byte[] before = c.dog("vdi", "read", "v").assertOk().stdoutBytes();

            // qemu-io over TLS writes and reads back
            CommandResult w = qemuIo(good, port, "write -P 0x5a 0 1M", "read -P 0x5a 0 1M");
            assertTrue(w.ok() && !w.stdout().contains("fail"), "qemu-io over TLS: " + w);
            byte[] image = c.dog("vdi", "read", "v").assertOk().stdoutBytes();
            byte[] want = before.clone();
            Arrays.fill(want, 0, MiB, (byte) 0x5a);
            assertArrayEquals(want, image, "the bytes qemu-io wrote over TLS are in the VDI");

            // nbdcopy and nbdinfo with nbds:// and the client certificate directory
            Path out = tmp.resolve("copy.raw");
            Commands.run(List.of("nbdcopy", nbds(port, good), out.toString())).assertOk();
            assertArrayEquals(image, Files.readAllBytes(out), "nbdcopy over TLS reads the VDI");
            assertTrue(Commands.run(List.of("nbdinfo", nbds(port, good))).assertOk().stdout().contains("export-size: 16777216"));

            // refused: plain text, a certificate of another CA, a certificate name not allowed, no certificate
            CommandResult plain = Commands.run(List.of("nbdinfo", "nbd://127.0.0.1:" + port + "/v"));
            assertNotEquals(0, plain.exitCode(), "a plain-text client: " + plain);
            CommandResult list = Commands.run(List.of("nbdinfo", "--list", "nbd://127.0.0.1:" + port));
            assertTrue(!list.stdout().contains("export=\"v\"") && !list.stdout().contains("\nv\n"), "the exports are not listed in plain text: " + list);
            for (Path bad : List.of(rogue, other)) {
                CommandResult r = qemuIo(bad, port, "write -P 0x66 0 4096");
                assertNotEquals(0, r.exitCode(), bad + " must be refused: " + r);
                assertNotEquals(0, Commands.run(List.of("nbdinfo", nbds(port, bad))).exitCode(), bad + " over nbdinfo");
            }
            CommandResult noCert = Commands.run(List.of("nbdinfo", "nbds://127.0.0.1:" + port + "/v"));
            assertNotEquals(0, noCert.exitCode(), "a TLS client without a certificate: " + noCert);
            assertArrayEquals(image, c.dog("vdi", "read", "v").assertOk().stdoutBytes(), "the refused clients changed nothing");
            assertTrue(c.node(0).logContains("TLS handshake failed"), "the refusals are logged");
            assertTrue(c.node(0).logContains("client certificate name 'client2' is not allowed"), "the name refusal is logged");

            fuzzOverTls(c, port, good, tmp);
            CommandResult after = qemuIo(good, port, "read -P 0x5a 0 1M");
            assertTrue(after.ok() && !after.stdout().contains("fail"), "served after the fuzzing: " + after);

            // a VM boots from the VDI over TLS: the boot sector's guest writes its counter records
            Tools.require("qemu-system-x86_64");
            {
                c.dogWithInput(LiveMigrationIT.bootSector(), "vdi", "write", "v", "0", "512").assertOk();
                c.dogWithInput(new byte[64 * 512], "vdi", "write", "v", "512", Integer.toString(64 * 512)).assertOk();
                Process vm = new ProcessBuilder("qemu-system-x86_64", "-accel", "tcg", "-display", "none", "-m", "32",
                        "-object", "tls-creds-x509,id=tls0,dir=" + good + ",endpoint=client",
                        "-drive", "driver=raw,if=ide,file.driver=nbd,file.host=127.0.0.1,file.port=" + port
                                + ",file.export=v,file.tls-creds=tls0",
                        "-serial", "none", "-monitor", "none").redirectErrorStream(true)
                        .redirectOutput(tmp.resolve("vm.log").toFile())
                        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
                try {
                    long m = LiveMigrationIT.awaitProgress(c, c.node(0), "v", 100, 120);
                    KillRestartIT.log("a VM booted over NBD with TLS: its guest wrote " + m + " counter records");
                } finally {
                    vm.destroyForcibly();
                    vm.waitFor();
                }
                LiveMigrationIT.checkDisk(c, c.node(0), "v");
            }
        }
    }

    /**
     * Fuzzing over TLS: connections that switch to TLS with a valid certificate and then send random bytes or
     * mutated options, and connections that send random bytes where the TLS handshake should be. Every one is
     * answered or closed (none hangs), nothing is logged as an internal error, and the server serves afterwards.
     */
    private static void fuzzOverTls(MiniCluster c, int port, Path clientDir, Path tmp) throws Exception {
        Path p12 = tmp.resolve("client.p12");
        openssl(tmp, "pkcs12", "-export", "-in", clientDir.resolve("client-cert.pem").toString(), "-inkey",
                clientDir.resolve("client-key.pem").toString(), "-out", p12.toString(), "-passout", "pass:fuzz");
        java.security.KeyStore ks = java.security.KeyStore.getInstance("PKCS12");
        try (var in = Files.newInputStream(p12)) {
            ks.load(in, "fuzz".toCharArray());
        }
        var kmf = javax.net.ssl.KeyManagerFactory.getInstance(javax.net.ssl.KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, "fuzz".toCharArray());
        java.security.KeyStore ts = java.security.KeyStore.getInstance("PKCS12");
        ts.load(null, null);
        try (var in = Files.newInputStream(clientDir.resolve("ca-cert.pem"))) {
            ts.setCertificateEntry("ca", java.security.cert.CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        var tmf = javax.net.ssl.TrustManagerFactory.getInstance(javax.net.ssl.TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(ts);
        var ssl = javax.net.ssl.SSLContext.getInstance("TLS");
        ssl.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        java.util.Random rnd = new java.util.Random(18);
        int tlsSessions = 0;
        for (int i = 0; i < 60; i++) {
            try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
                // a record header cut short keeps TLS waiting for the rest until its 10 s handshake timeout
                s.setSoTimeout(25_000);
                var in = new java.io.DataInputStream(s.getInputStream());
                var out = new java.io.DataOutputStream(s.getOutputStream());
                in.readFully(new byte[18]); // NBDMAGIC, IHAVEOPT, handshake flags
                out.writeInt(3);            // FIXED_NEWSTYLE | NO_ZEROES
                out.writeLong(0x49484156454F5054L); // IHAVEOPT
                out.writeInt(5);            // STARTTLS
                out.writeInt(0);
                out.flush();
                byte[] rep = new byte[20];
                in.readFully(rep);
                assertEquals(1, java.nio.ByteBuffer.wrap(rep).getInt(12), "STARTTLS is acknowledged (reply magic, option, type, length)");
                byte[] noise = new byte[16 + rnd.nextInt(i % 3 == 0 ? 64 : 4096)];
                rnd.nextBytes(noise);
                if (i % 2 == 0) {
                    // noise where the ClientHello should be: the handshake fails, the connection closes
                    out.write(noise);
                    out.flush();
                    drainUntilClosed(in);
                    continue;
                }
                var tls = (javax.net.ssl.SSLSocket) ssl.getSocketFactory().createSocket(s, "127.0.0.1", port, true);
                tls.startHandshake();
                tlsSessions++;
                var tout = new java.io.DataOutputStream(tls.getOutputStream());
                if (i % 4 == 1) {
                    // a mutated option: a real header with random option code and length, then noise
                    tout.writeLong(0x49484156454F5054L);
                    tout.writeInt(rnd.nextInt(16));
                    tout.writeInt(noise.length);
                }
                tout.write(noise);
                tout.flush();
                tls.shutdownOutput();
                drainUntilClosed(new java.io.DataInputStream(tls.getInputStream()));
            }
        }
        assertTrue(tlsSessions >= 25, "most fuzz sessions got through the handshake: " + tlsSessions);
        String log = Files.readString(c.node(0).storeDir().resolve("sheep.log"));
        assertTrue(!log.contains("internal error"), "no internal error while fuzzing over TLS");
    }

    /** Reads whatever the server answers until it closes the connection (a timeout fails: it must not hang). */
    private static void drainUntilClosed(java.io.InputStream in) throws IOException {
        byte[] b = new byte[4096];
        try {
            while (in.read(b) >= 0) { }
        } catch (java.net.SocketTimeoutException e) {
            throw new AssertionError("the server neither answered nor closed a fuzzed connection within 25 s");
        } catch (java.net.SocketException | javax.net.ssl.SSLException e) {
            // reset or a TLS alert: closed as well
        }
    }

    /** A self-signed CA in {@code dir}: ca-cert.pem and ca-key.pem. */
    private static Path ca(Path dir, String name) throws Exception {
        Files.createDirectories(dir);
        openssl(dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir.resolve("ca-key.pem").toString(),
                "-out", dir.resolve("ca-cert.pem").toString(),
                "-days", "30", "-subj", "/CN=" + name);
        return dir;
    }

    /**
     * A certificate for {@code cn} signed by the CA in {@code ca}, as {@code role}-cert.pem and {@code role}-key.pem
     * in {@code dir}; {@code pkcs1}: the key in the traditional RSA form.
     */
    private static void issue(Path ca, Path dir, String role, String cn, String ext, boolean pkcs1) throws Exception {
        Path key = dir.resolve(role + "-key.pem"), csr = dir.resolve(role + ".csr"), extFile = dir.resolve(role + ".ext");
        Files.writeString(extFile, ext + "\n");
        openssl(dir, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key.toString(), "-out", csr.toString(), "-subj", "/CN=" + cn);
        openssl(dir, "x509", "-req", "-in", csr.toString(), "-CA", ca.resolve("ca-cert.pem").toString(), "-CAkey",
                ca.resolve("ca-key.pem").toString(), "-CAcreateserial", "-out", dir.resolve(role + "-cert.pem").toString(),
                "-days", "30", "-extfile", extFile.toString());
        if (pkcs1) openssl(dir, "rsa", "-in", key.toString(), "-out", key.toString(), "-traditional");
    }

    private static void openssl(Path dir, String... args) {
        List<String> cmd = new ArrayList<>(List.of("openssl"));
        cmd.addAll(List.of(args));
        Commands.run(cmd, null, Map.of("RANDFILE", dir.resolve(".rnd").toString()), Duration.ofSeconds(60)).assertOk();
    }

    private static String nbds(int port, Path clientDir) {
        return "nbds://127.0.0.1:" + port + "/v?tls-certificates=" + clientDir;
    }

    private static CommandResult qemuIo(Path clientDir, int port, String... cmds) {
        List<String> cmd = new ArrayList<>(List.of("qemu-io",
                "--object", "tls-creds-x509,id=tls0,dir=" + clientDir + ",endpoint=client"));
        for (String s : cmds) cmd.addAll(List.of("-c", s));
        cmd.add("--image-opts");
        cmd.add("driver=raw,file.driver=nbd,file.host=127.0.0.1,file.port=" + port + ",file.export=v,file.tls-creds=tls0");
        return Commands.run(cmd);
    }
}
