/**
 * The NBD front door of the sheep daemon: QEMU, qemu-img, qemu-io, nbdinfo, nbdcopy, fio and the kernel's nbd
 * client use a VDI as {@code nbd://host:port/NAME}.
 *
 * <p>Wiring: implement {@link io.sheepdog.sheep.nbd.NbdExportProvider} (names to exports) and
 * {@link io.sheepdog.sheep.nbd.NbdExport} (one opened device per connection: blocking, thread-safe calls, one
 * virtual thread per request), then
 * {@code new NbdServer(NbdServerConfig.defaults().withPort(p).withBindAddress(a), provider).start()} and
 * {@code close()} at shutdown.
 *
 * <p>Pieces: {@link io.sheepdog.sheep.nbd.NbdServer} (listener, event loops, worker threads),
 * {@code NbdNegotiationHandler} (greeting, options, TLS), then {@code NbdRequestDecoder}, {@code NbdReplyEncoder} and
 * {@code NbdTransmissionHandler} (requests, in-flight limits, replies),
 * {@code NbdNegotiator} (option haggling), {@code FlushCoalescer} (group commit of FLUSH),
 * {@link io.sheepdog.sheep.nbd.NbdProtocol} (wire constants).
 */
package io.sheepdog.sheep.nbd;
