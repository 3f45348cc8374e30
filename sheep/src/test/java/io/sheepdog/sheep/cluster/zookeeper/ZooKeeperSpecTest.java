package io.sheepdog.sheep.cluster.zookeeper;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.sheepdog.sheep.cluster.ClusterDriverException;
import org.junit.jupiter.api.Test;

class ZooKeeperSpecTest {

    @Test
    void defaults() throws Exception {
        assertEquals(new ZooKeeperSpec("10.0.0.1:2181", "/sheepdog", 30000), ZooKeeperSpec.parse("10.0.0.1:2181"));
    }

    @Test
    void severalServersClusterIdAndTimeout() throws Exception {
        assertEquals(new ZooKeeperSpec("a:2181,b:2182,c:2183", "/prod", 5000),
                ZooKeeperSpec.parse("a:2181,b:2182,c:2183/prod,timeout=5000"));
        assertEquals(new ZooKeeperSpec("a:2181", "/x/y", 30000), ZooKeeperSpec.parse("a:2181/x/y"));
        assertEquals(new ZooKeeperSpec("[::1]:2181", "/sheepdog", 1000), ZooKeeperSpec.parse("[::1]:2181,timeout=1000"));
    }

    @Test
    void badInputIsOneLineReason() {
        for (String[] c : new String[][] {
                {"", "zookeeper needs server addresses"},
                {"host", "invalid zookeeper server 'host': expected HOST:PORT"},
                {"host:", "invalid zookeeper server 'host:': expected HOST:PORT"},
                {"host:0", "invalid zookeeper server 'host:0': bad port '0'"},
                {"host:70000", "invalid zookeeper server 'host:70000': bad port '70000'"},
                {"host:2181,timeout=0", "invalid zookeeper timeout '0'"},
                {"host:2181,timeout=-5", "invalid zookeeper timeout '-5'"},
                {"host:2181,timeout=1s", "invalid zookeeper timeout '1s'"},
                {"host:2181,foo=1", "unknown zookeeper option 'foo=1'"},
                {"host:2181/", "invalid zookeeper cluster id '/'"},
                {"host:2181/a//b", "invalid zookeeper cluster id '/a//b'"},
                {"host:2181,", "invalid zookeeper server ''"}}) {
            ClusterDriverException e = assertThrows(ClusterDriverException.class, () -> ZooKeeperSpec.parse(c[0]), c[0]);
            assertEquals(true, e.getMessage().startsWith(c[1]), c[0] + " -> " + e.getMessage());
        }
    }
}
