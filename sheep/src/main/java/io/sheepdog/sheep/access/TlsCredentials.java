package io.sheepdog.sheep.access;

import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.InvalidKeySpecException;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.naming.InvalidNameException;
import javax.naming.ldap.LdapName;
import javax.naming.ldap.Rdn;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;

/**
 * A server's x509 credentials as QEMU lays them out in a directory ({@code tls-creds-x509,dir=...}):
 * {@code ca-cert.pem} (the CA that signs client certificates), {@code server-cert.pem} (the server's certificate,
 * optionally followed by intermediates) and {@code server-key.pem} (its private key: PKCS#8, or an RSA key in
 * PKCS#1 as {@code certtool} and older {@code openssl} write it). Clients must present a certificate the CA signed;
 * with {@code allowedNames} not empty, its subject's common name must also be one of them (as QEMU's
 * {@code tls-authz}). TLS 1.3 and 1.2 only.
 */
public final class TlsCredentials {
    private static final Pattern PEM = Pattern.compile(
            "-----BEGIN ([A-Z0-9 ]+)-----([A-Za-z0-9+/=\\s]+)-----END \\1-----");

    /**
     * BoringSSL where it loads (it is on the class path for x86-64 Linux), else the JDK. GnuTLS clients (QEMU,
     * libnbd) choose their certificate by the signature algorithms of the server's TLS 1.3 CertificateRequest; the
     * JDK names only RSA-PSS there, so an RSA certificate signed the usual way (sha256WithRSAEncryption) is not sent
     * and the handshake fails. With the JDK, TLS 1.2 works with those clients.
     */
    private static final SslProvider PROVIDER = OpenSsl.isAvailable() ? SslProvider.OPENSSL : SslProvider.JDK;

    private final SslContext context;
    private final Set<String> allowedNames;

    private TlsCredentials(SslContext context, Set<String> allowedNames) {
        this.context = context;
        this.allowedNames = allowedNames;
    }

    /** Loads the credentials; a missing or unreadable file is an IllegalArgumentException with a one-line reason. */
    public static TlsCredentials load(Path dir, Set<String> allowedNames) {
        try {
            List<X509Certificate> ca = certificates(dir.resolve("ca-cert.pem"));
            List<X509Certificate> chain = certificates(dir.resolve("server-cert.pem"));
            PrivateKey key = privateKey(dir.resolve("server-key.pem"));
            SslContext ctx = SslContextBuilder.forServer(key, chain.toArray(X509Certificate[]::new))
                    .trustManager(ca.toArray(X509Certificate[]::new))
                    .clientAuth(ClientAuth.REQUIRE)
                    .protocols(System.getProperty("sheepdog.tlsProtocols", "TLSv1.3,TLSv1.2").split(","))
                    .sslProvider(PROVIDER)
                    .startTls(true) // NBD's STARTTLS: the reply that agrees to the switch goes out in plain text
                    .build();
            return new TlsCredentials(ctx, Set.copyOf(allowedNames));
        } catch (IOException | GeneralSecurityException | IllegalArgumentException e) {
            String m = e.getMessage() == null ? e.toString() : e.getMessage();
            throw new IllegalArgumentException("Invalid TLS credentials in " + dir + ": " + m.replace('\n', ' '));
        }
    }

    /**
     * A handler for a connection that switches to TLS now (STARTTLS): the next write, the reply that agrees to the
     * switch, still goes out in plain text.
     */
    public SslHandler newHandler(ByteBufAllocator alloc) {
        return context.newHandler(alloc);
    }

    /** Null if the client of {@code session} may go on, else why not (its certificate's name is not allowed). */
    public String refusal(SSLSession session) {
        if (allowedNames.isEmpty()) return null;
        String cn;
        try {
            cn = commonName((X509Certificate) session.getPeerCertificates()[0]);
        } catch (SSLPeerUnverifiedException e) {
            return "no client certificate";
        }
        return cn != null && allowedNames.contains(cn) ? null : "client certificate name '" + cn + "' is not allowed";
    }

    static String commonName(X509Certificate c) {
        try {
            for (Rdn r : new LdapName(c.getSubjectX500Principal().getName()).getRdns()) {
                if (r.getType().equalsIgnoreCase("CN")) return String.valueOf(r.getValue());
            }
        } catch (InvalidNameException e) {
            return null;
        }
        return null;
    }

    private static List<X509Certificate> certificates(Path f) throws IOException, GeneralSecurityException {
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        List<X509Certificate> out = new ArrayList<>();
        for (byte[] der : pemBlocks(f, "CERTIFICATE")) {
            out.add((X509Certificate) cf.generateCertificate(new ByteArrayInputStream(der)));
        }
        if (out.isEmpty()) throw new IllegalArgumentException(f.getFileName() + " holds no PEM certificate");
        return out;
    }

    private static PrivateKey privateKey(Path f) throws IOException, GeneralSecurityException {
        List<byte[]> pkcs8 = pemBlocks(f, "PRIVATE KEY");
        byte[] der;
        if (!pkcs8.isEmpty()) {
            der = pkcs8.getFirst();
        } else {
            List<byte[]> rsa = pemBlocks(f, "RSA PRIVATE KEY");
            if (rsa.isEmpty()) {
                throw new IllegalArgumentException(f.getFileName() + " holds no unencrypted PKCS#8 or RSA private key");
            }
            der = rsaToPkcs8(rsa.getFirst());
        }
        for (String alg : new String[] {"RSA", "EC", "Ed25519", "RSASSA-PSS"}) {
            try {
                return KeyFactory.getInstance(alg).generatePrivate(new PKCS8EncodedKeySpec(der));
            } catch (InvalidKeySpecException e) {
                // another algorithm
            }
        }
        throw new IllegalArgumentException(f.getFileName() + ": a private key of an unsupported algorithm");
    }

    private static List<byte[]> pemBlocks(Path f, String type) throws IOException {
        if (!Files.isReadable(f)) throw new IllegalArgumentException(f.getFileName() + " is missing or unreadable");
        String text = Files.readString(f, StandardCharsets.US_ASCII);
        List<byte[]> out = new ArrayList<>();
        Matcher m = PEM.matcher(text);
        while (m.find()) {
            if (m.group(1).equals(type)) out.add(Base64.getMimeDecoder().decode(m.group(2)));
        }
        return out;
    }

    /** Wraps a PKCS#1 RSAPrivateKey in a PKCS#8 PrivateKeyInfo (version 0, rsaEncryption, the key as an octet string). */
    static byte[] rsaToPkcs8(byte[] pkcs1) {
        byte[] algorithm = {0x30, 0x0d, 0x06, 0x09, 0x2a, (byte) 0x86, 0x48, (byte) 0x86, (byte) 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00};
        byte[] version = {0x02, 0x01, 0x00};
        byte[] octets = tlv(0x04, pkcs1);
        byte[] body = new byte[version.length + algorithm.length + octets.length];
        System.arraycopy(version, 0, body, 0, version.length);
        System.arraycopy(algorithm, 0, body, version.length, algorithm.length);
        System.arraycopy(octets, 0, body, version.length + algorithm.length, octets.length);
        return tlv(0x30, body);
    }

    private static byte[] tlv(int tag, byte[] value) {
        int n = value.length;
        byte[] len = n < 0x80 ? new byte[] {(byte) n}
                : n < 0x100 ? new byte[] {(byte) 0x81, (byte) n}
                : n < 0x10000 ? new byte[] {(byte) 0x82, (byte) (n >> 8), (byte) n}
                : new byte[] {(byte) 0x83, (byte) (n >> 16), (byte) (n >> 8), (byte) n};
        byte[] out = new byte[1 + len.length + n];
        out[0] = (byte) tag;
        System.arraycopy(len, 0, out, 1, len.length);
        System.arraycopy(value, 0, out, 1 + len.length, n);
        return out;
    }
}
