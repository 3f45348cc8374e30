package io.sheepdog.sheep.cluster.zookeeper;

import io.sheepdog.sheep.cluster.ClusterDriverException;
import java.util.ArrayList;
import java.util.List;

/**
 * The option string of {@code sheep -c zookeeper:HOST:PORT[,HOST:PORT...][/cluster_id][,timeout=MS]} (the part
 * after {@code zookeeper:}).
 *
 * @param connectString ZooKeeper connect string without chroot, e.g. {@code 10.0.0.1:2181,10.0.0.2:2181}
 * @param basePath      znode under which the cluster lives: {@code /sheepdog}, or {@code /cluster_id}
 * @param timeoutMs     session timeout; also the longest time {@code join} waits for a server
 */
public record ZooKeeperSpec(String connectString, String basePath, int timeoutMs) {

    public static final String DEFAULT_BASE = "/sheepdog";
    public static final int DEFAULT_TIMEOUT_MS = 30_000;

    public static ZooKeeperSpec parse(String spec) throws ClusterDriverException {
        if (spec == null || spec.isBlank()) {
            throw new ClusterDriverException("zookeeper needs server addresses: -c zookeeper:HOST:PORT[,HOST:PORT...]"
                    + "[/cluster_id][,timeout=MS]");
        }
        int timeout = DEFAULT_TIMEOUT_MS;
        List<String> hosts = new ArrayList<>();
        String base = DEFAULT_BASE;
        for (String token : spec.split(",", -1)) {
            if (token.startsWith("timeout=")) {
                timeout = parseTimeout(token.substring("timeout=".length()));
                continue;
            }
            if (token.contains("=")) throw new ClusterDriverException("unknown zookeeper option '" + token + "'");
            int slash = token.indexOf('/');
            if (slash >= 0) {
                if (!base.equals(DEFAULT_BASE)) throw new ClusterDriverException("more than one cluster id in '" + spec + "'");
                base = parseClusterId(token.substring(slash));
                token = token.substring(0, slash);
            }
            hosts.add(parseHost(token));
        }
        return new ZooKeeperSpec(String.join(",", hosts), base, timeout);
    }

    private static int parseTimeout(String s) throws ClusterDriverException {
        if (!s.matches("[0-9]{1,9}") || Integer.parseInt(s) == 0) {
            throw new ClusterDriverException("invalid zookeeper timeout '" + s + "': must be a positive number of ms");
        }
        return Integer.parseInt(s);
    }

    private static String parseClusterId(String path) throws ClusterDriverException {
        if (path.length() < 2 || path.endsWith("/") || path.contains("//") || !path.matches("[A-Za-z0-9_./-]+")
                || path.contains("/./") || path.contains("/../") || path.endsWith("/.") || path.endsWith("/..")) {
            throw new ClusterDriverException("invalid zookeeper cluster id '" + path + "'");
        }
        return path;
    }

    private static String parseHost(String hostPort) throws ClusterDriverException {
        int colon = hostPort.lastIndexOf(':');
        if (colon <= 0 || colon == hostPort.length() - 1) {
            throw new ClusterDriverException("invalid zookeeper server '" + hostPort + "': expected HOST:PORT");
        }
        String host = hostPort.substring(0, colon);
        String port = hostPort.substring(colon + 1);
        if (!port.matches("[0-9]{1,5}") || Integer.parseInt(port) == 0 || Integer.parseInt(port) > 65535) {
            throw new ClusterDriverException("invalid zookeeper server '" + hostPort + "': bad port '" + port + "'");
        }
        if (host.startsWith("[") != host.endsWith("]") || host.isBlank()) {
            throw new ClusterDriverException("invalid zookeeper server '" + hostPort + "': bad host");
        }
        return hostPort;
    }

    @Override public String toString() {
        return connectString + (basePath.equals(DEFAULT_BASE) ? "" : basePath) + ",timeout=" + timeoutMs;
    }
}
