package io.sheepdog.sheep.cluster;

import io.sheepdog.sheep.cluster.corosync.CorosyncClusterDriver;
import io.sheepdog.sheep.cluster.local.LocalClusterDriver;
import io.sheepdog.sheep.cluster.zookeeper.ZooKeeperClusterDriver;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.List;

/**
 * Creates the cluster driver named by {@code sheep -c driver[:options]} (docs/daemon.md §1).
 *
 * <p>Drivers register here: add the name to {@link #SUPPORTED} and a case to {@link #create}.
 */
public final class ClusterDrivers {
    /** The driver used when {@code -c} is not given. */
    public static final String DEFAULT = LocalClusterDriver.NAME;

    /** Names accepted by {@link #create}, in the order they are listed to the user. */
    public static final List<String> SUPPORTED = List.of(LocalClusterDriver.NAME, "zookeeper", "corosync", "solo");

    private ClusterDrivers() {}

    /**
     * Parses {@code spec} ({@code name} or {@code name:options}) and creates the driver, not yet joined.
     *
     * <ul>
     *   <li>{@code local} or {@code local:PATH}: the rendezvous directory shared by the sheep of this host
     *   (default {@link LocalClusterDriver#DEFAULT_DIRECTORY}); a relative PATH is taken from the working
     *   directory.</li>
     * </ul>
     *
     * @throws ClusterDriverException with a one-line message for an unknown driver or bad options
     */
    public static ClusterDriver create(String spec) throws ClusterDriverException {
        if (spec == null) spec = "";
        int colon = spec.indexOf(':');
        String name = colon < 0 ? spec : spec.substring(0, colon);
        String options = colon < 0 ? null : spec.substring(colon + 1);
        return switch (name) {
            case LocalClusterDriver.NAME -> local(options);
            case "solo" -> new SoloClusterDriver();
            case "zookeeper" -> ZooKeeperClusterDriver.fromSpec(options);
            case "corosync" -> {
                if (options != null && !options.isEmpty()) {
                    throw new ClusterDriverException("Invalid option for cluster driver 'corosync': it takes no options");
                }
                yield new CorosyncClusterDriver();
            }
            default -> throw new ClusterDriverException("Invalid cluster driver '" + name + "' (supported drivers: "
                    + String.join(", ", SUPPORTED) + ")");
        };
    }

    private static ClusterDriver local(String options) throws ClusterDriverException {
        if (options == null) return new LocalClusterDriver();
        if (options.isEmpty()) {
            throw new ClusterDriverException("Invalid option for cluster driver 'local': the path after 'local:' is empty");
        }
        try {
            return new LocalClusterDriver(Path.of(options));
        } catch (InvalidPathException e) {
            throw new ClusterDriverException("Invalid option for cluster driver 'local': bad path '" + options + "'");
        }
    }
}
