package io.sheepdog.client;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;

/** A formatted {@link ModelSheep} per test and a client on a pool of connections to it. */
abstract class ModelSheepFixture {
    ModelSheep sheep;
    ConnectionPool pool;
    SheepClient client;

    @BeforeEach
    void startSheep() throws Exception {
        sheep = new ModelSheep();
        sheep.format();
        pool = new ConnectionPool(4, 2000);
        client = new SheepClient(pool.peer("127.0.0.1", sheep.port()));
    }

    @AfterEach
    void stopSheep() throws Exception {
        pool.close();
        sheep.close();
    }
}
