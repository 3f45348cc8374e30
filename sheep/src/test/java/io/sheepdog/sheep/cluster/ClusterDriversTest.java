package io.sheepdog.sheep.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.sheepdog.sheep.cluster.local.LocalClusterDriver;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class ClusterDriversTest {

    @Test void localWithoutOptionUsesTheDefaultDirectory() throws Exception {
        ClusterDriver d = ClusterDrivers.create("local");
        assertEquals("local", d.name());
        assertEquals(LocalClusterDriver.DEFAULT_DIRECTORY, assertInstanceOf(LocalClusterDriver.class, d).directory());
    }

    @Test void localWithAPath() throws Exception {
        LocalClusterDriver d = (LocalClusterDriver) ClusterDrivers.create("local:/tmp/some-cluster");
        assertEquals(Path.of("/tmp/some-cluster"), d.directory());
    }

    @Test void relativePathIsTakenFromTheWorkingDirectory() throws Exception {
        LocalClusterDriver d = (LocalClusterDriver) ClusterDrivers.create("local:rel/dir");
        assertEquals(Path.of("rel/dir").toAbsolutePath(), d.directory());
    }

    @Test void emptyLocalPathIsRejected() {
        ClusterDriverException e = assertThrows(ClusterDriverException.class, () -> ClusterDrivers.create("local:"));
        assertEquals("Invalid option for cluster driver 'local': the path after 'local:' is empty", e.getMessage());
    }

    @Test void unknownDriverListsTheSupportedOnes() {
        ClusterDriverException e = assertThrows(ClusterDriverException.class, () -> ClusterDrivers.create("shepherd:x"));
        assertEquals("Invalid cluster driver 'shepherd' (supported drivers: local, zookeeper, corosync, solo)", e.getMessage());
        e = assertThrows(ClusterDriverException.class, () -> ClusterDrivers.create(""));
        assertEquals("Invalid cluster driver '' (supported drivers: local, zookeeper, corosync, solo)", e.getMessage());
        assertThrows(ClusterDriverException.class, () -> ClusterDrivers.create("LOCAL"));
    }

    @Test void solo() throws Exception {
        assertEquals("solo", ClusterDrivers.create("solo").name());
    }

    @Test void defaultIsLocal() {
        assertEquals("local", ClusterDrivers.DEFAULT);
    }

    @org.junit.jupiter.api.Test
    void zookeeperAndCorosyncSpecsAreParsedWithOneLineErrors() throws Exception {
        try (ClusterDriver zk = ClusterDrivers.create("zookeeper:127.0.0.1:2181,timeout=5000")) {
            org.junit.jupiter.api.Assertions.assertEquals("zookeeper", zk.name());
        }
        ClusterDriverException e = org.junit.jupiter.api.Assertions.assertThrows(ClusterDriverException.class,
                () -> ClusterDrivers.create("corosync:extra"));
        org.junit.jupiter.api.Assertions.assertEquals("Invalid option for cluster driver 'corosync': it takes no options", e.getMessage());
        org.junit.jupiter.api.Assertions.assertThrows(ClusterDriverException.class, () -> ClusterDrivers.create("zookeeper"));
    }
}
