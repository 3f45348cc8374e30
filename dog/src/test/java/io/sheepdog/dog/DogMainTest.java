package io.sheepdog.dog;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

class DogMainTest {

    @Test
    void trainingCommandsKeepOnlyTheAddressOfTheUsersCommand() {
        assertArrayEquals(new String[] {"vdi", "list", "-a", "10.0.0.2", "-p", "7001"},
                DogMain.trainingArgs(List.of("vdi", "list"), new String[] {"node", "list", "-r", "-a", "10.0.0.2", "-p", "7001"}));
        assertArrayEquals(new String[] {"cluster", "info", "--address=h", "-p7002", "--port", "7003"},
                DogMain.trainingArgs(List.of("cluster", "info"),
                        new String[] {"vdi", "list", "--address=h", "-p7002", "-T", "--port", "7003", "Alice"}));
        assertArrayEquals(new String[] {"vm", "list"}, DogMain.trainingArgs(List.of("vm", "list"), new String[] {"node", "list"}));
        // a trailing -p without its value is left out rather than swallowing nothing
        assertArrayEquals(new String[] {"node", "info"}, DogMain.trainingArgs(List.of("node", "info"), new String[] {"node", "list", "-p"}));
    }
}
