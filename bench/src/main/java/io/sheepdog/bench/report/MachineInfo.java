package io.sheepdog.bench.report;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The machine a run was made on, from /proc and /sys (nothing here starts a process). */
public final class MachineInfo {
    private MachineInfo() {}

    /** CPU, core count, memory, kernel and the disk holding {@code dataDir}. */
    public static Map<String, Object> collect(Path dataDir) {
        Map<String, Object> m = new LinkedHashMap<>();
        List<String> cpu = lines("/proc/cpuinfo");
        m.put("cpu", cpu.stream().filter(l -> l.startsWith("model name")).findFirst().map(MachineInfo::after).orElse("unknown"));
        m.put("cpus", Runtime.getRuntime().availableProcessors());
        m.put("memory_mib", lines("/proc/meminfo").stream().filter(l -> l.startsWith("MemTotal:")).findFirst()
                .map(l -> Long.parseLong(after(l).replace("kB", "").trim()) / 1024).orElse(-1L));
        m.put("kernel", first("/proc/sys/kernel/ostype") + " " + first("/proc/sys/kernel/osrelease"));
        m.put("hostname", first("/proc/sys/kernel/hostname"));
        if (dataDir != null) m.putAll(disk(dataDir));
        return m;
    }

    /** The mount and block device that hold {@code dir}, its file system and whether the device is rotational. */
    static Map<String, Object> disk(Path dir) {
        Map<String, Object> m = new LinkedHashMap<>();
        String abs = dir.toAbsolutePath().normalize().toString();
        String bestMount = "";
        String dev = "unknown";
        String fs = "unknown";
        for (String l : lines("/proc/mounts")) {
            String[] f = l.split(" ");
            if (f.length < 3) continue;
            String mp = f[1].replace("\\040", " ");
            boolean under = abs.equals(mp) || abs.startsWith(mp.endsWith("/") ? mp : mp + "/");
            if (under && mp.length() >= bestMount.length()) {
                bestMount = mp;
                dev = f[0];
                fs = f[2];
            }
        }
        m.put("data_dir", abs);
        m.put("data_mount", bestMount);
        m.put("data_device", dev);
        m.put("data_fs", fs);
        String name = Path.of(dev).getFileName() == null ? dev : Path.of(dev).getFileName().toString();
        String base = name.replaceAll("p?[0-9]+$", "");
        for (String n : new String[] {name, base}) {
            String rot = first("/sys/block/" + n + "/queue/rotational");
            if (!rot.isEmpty()) {
                m.put("data_rotational", rot.equals("1"));
                break;
            }
        }
        return m;
    }

    private static String after(String l) {
        int i = l.indexOf(':');
        return i < 0 ? l.trim() : l.substring(i + 1).trim();
    }

    private static List<String> lines(String file) {
        try {
            return Files.readAllLines(Path.of(file));
        } catch (IOException | RuntimeException e) {
            return List.of();
        }
    }

    private static String first(String file) {
        List<String> l = lines(file);
        return l.isEmpty() ? "" : l.get(0).trim();
    }
}
