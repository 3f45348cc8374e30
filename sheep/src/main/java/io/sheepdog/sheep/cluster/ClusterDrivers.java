package io.sheepdog.sheep.cluster;

/** Makes the cluster driver named by {@code sheep -c SPEC}. */
public final class ClusterDrivers {
    private ClusterDrivers() {}

    public static ClusterDriver create(String spec) throws ClusterDriverException {
        String name = spec.contains(":") ? spec.substring(0, spec.indexOf(':')) : spec;
        return switch (name) {
            case "solo", "local" -> new SoloClusterDriver();
            default -> throw new ClusterDriverException("Invalid cluster driver '" + spec + "'; supported: local, solo");
        };
    }
}
