/**
 * migration/rdma.c (9.0) on a host without RDMA hardware, which is every host the lab
 * runs on: both directions fail synchronously (throw QmpError) at the first librdmacm
 * call, with the texts real QEMU gives there (9.0 reports them only through Error, 7.2
 * also printed them on stderr).
 *
 *  - outgoing: "RDMA ERROR: RDMA hostname has not been set" (empty host), else
 *    "RDMA ERROR: could not create CM channel" (qemu_rdma_resolve_host()).
 *  - incoming: "RDMA ERROR: RDMA host is not set!" (empty host), else
 *    "RDMA ERROR: could not create rdma event channel" (qemu_rdma_dest_init()).
 *
 * A malformed "rdma:" URI never gets here: see migrate_uri_parse().
 */
import { error_setg } from '../qmp/error.js';
import type { InetSocketAddress } from '../io/channel-socket.js';
import type { MigrationChannelAccept, MigrationChannelConnect } from './socket.js';

/** rdma_start_outgoing_migration(): always throws without an RDMA device. */
export function rdma_start_outgoing_migration(host_port: InetSocketAddress, _done: MigrationChannelConnect): never {
  if (!host_port.host) throw error_setg('RDMA ERROR: RDMA hostname has not been set');
  throw error_setg('RDMA ERROR: could not create CM channel');
}

/** rdma_start_incoming_migration(): always throws without an RDMA device. */
export function rdma_start_incoming_migration(host_port: InetSocketAddress, _accept: MigrationChannelAccept): never {
  if (!host_port.host) throw error_setg('RDMA ERROR: RDMA host is not set!');
  throw error_setg('RDMA ERROR: could not create rdma event channel');
}
