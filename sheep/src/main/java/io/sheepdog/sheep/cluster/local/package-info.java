/**
 * The {@code local} cluster driver ({@code sheep -c local[:DIR]}): sheep processes on one host form a cluster
 * through a shared rendezvous directory (default {@code /tmp/sheepdog-local}). See
 * {@link io.sheepdog.sheep.cluster.local.LocalClusterDriver} for the guarantees and how they are met.
 *
 * <p>Directory layout:
 * <ul>
 *   <li>{@code events.log}: the append-only event log; its order is the cluster's total order
 *   ({@code EventLog}, {@code LogRecord}).</li>
 *   <li>{@code lock}: locked exclusively by whoever appends ({@code DirectoryLock}).</li>
 *   <li>{@code members/<pid>-<id>.member}: one per live member, locked for the member's whole life; an unlocked or
 *   missing file means the member is dead ({@code MemberFiles}).</li>
 * </ul>
 * Removing the directory while no sheep runs resets the cluster; while sheep run, do not touch it.
 */
package io.sheepdog.sheep.cluster.local;
