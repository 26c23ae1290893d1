/**
 * query-migrate's shape in each state, as text: the lab's MigrationInfo printed with the
 * counters real QEMU reported must give real QEMU's line (9.0 = 7.2 here: both still
 * have `skipped`).
 */
import { describe, expect, it } from 'vitest';
import { MigrationIncomingState, MigrationState, qmp_query_migrate } from '../../../core/migration/migration.js';
import { MigrationOptions } from '../../../core/migration/options.js';
import { qobject_to_json } from '../../../core/qmp/json-writer.js';
import { QapiEventBus } from '../../../core/qmp/qapi-event.js';

function source(state: MigrationState['state'], ram: { total: number; remaining: number }): MigrationState {
  const s = new MigrationState(new MigrationOptions(), new QapiEventBus());
  s.state = state;
  s.ram = { ram_bytes_total: () => ram.total, ram_bytes_remaining: () => ram.remaining };
  return s;
}

const reply = (s: MigrationState, mis = new MigrationIncomingState(undefined), now = () => 0) =>
  qobject_to_json({ return: qmp_query_migrate(s, mis, now) });

describe('query-migrate on the source', () => {
  it('none: {}', () => {
    expect(reply(source('none', { total: 0, remaining: 0 }))).toBe('{"return": {}}');
  });

  it('setup, failed, cancelled: the status alone (plus error-desc when set)', () => {
    expect(reply(source('setup', { total: 1, remaining: 1 }))).toBe('{"return": {"status": "setup"}}');
    expect(reply(source('cancelled', { total: 1, remaining: 1 }))).toBe('{"return": {"status": "cancelled"}}');
    const f = source('failed', { total: 1, remaining: 1 });
    f.error = "Failed to connect to '127.0.0.1:1': Connection refused";
    expect(reply(f)).toBe(
      `{"return": {"status": "failed", "error-desc": "Failed to connect to '127.0.0.1:1': Connection refused"}}`,
    );
  });

  it('active: the 7.2 recording (fixture fact 17), byte for byte', () => {
    const s = source('active', { total: 268967936, remaining: 265539584 });
    Object.assign(s, { start_time: 1000, setup_time: 1, expected_downtime: 300, mbps: 67.30704, pages_per_second: 2050 });
    Object.assign(s.mig_stats, {
      dirty_sync_count: 1,
      qemu_file_transferred: 2521894,
      precopy_bytes: 2521894,
      zero_pages: 223,
      normal_pages: 614,
    });
    expect(reply(s, undefined, () => 1253)).toBe(
      '{"return": {"expected-downtime": 300, "status": "active", "setup-time": 1, "total-time": 253, "ram": {"total": 268967936, "postcopy-requests": 0, "dirty-sync-count": 1, "multifd-bytes": 0, "pages-per-second": 2050, "downtime-bytes": 0, "page-size": 4096, "remaining": 265539584, "postcopy-bytes": 0, "mbps": 67.307040000000001, "transferred": 2521894, "dirty-sync-missed-zero-copy": 0, "precopy-bytes": 2521894, "duplicate": 223, "dirty-pages-rate": 0, "skipped": 0, "normal-bytes": 2514944, "normal": 614}}}',
    );
  });

  it('completed: downtime instead of expected-downtime, remaining 0 (fixture fact 17)', () => {
    const s = source('completed', { total: 268967936, remaining: 12345 });
    Object.assign(s, { setup_time: 1, total_time: 1879, downtime: 72, mbps: 1161.1158423855165, pages_per_second: 32710 });
    Object.assign(s.mig_stats, {
      dirty_sync_count: 3,
      qemu_file_transferred: 272459314,
      precopy_bytes: 241633366,
      downtime_bytes: 30825948,
      zero_pages: 303,
      normal_pages: 66388,
      dirty_pages_rate: 99,
    });
    expect(reply(s)).toBe(
      '{"return": {"status": "completed", "setup-time": 1, "downtime": 72, "total-time": 1879, "ram": {"total": 268967936, "postcopy-requests": 0, "dirty-sync-count": 3, "multifd-bytes": 0, "pages-per-second": 32710, "downtime-bytes": 30825948, "page-size": 4096, "remaining": 0, "postcopy-bytes": 0, "mbps": 1161.1158423855165, "transferred": 272459314, "dirty-sync-missed-zero-copy": 0, "precopy-bytes": 241633366, "duplicate": 303, "dirty-pages-rate": 0, "skipped": 0, "normal-bytes": 271925248, "normal": 66388}}}',
    );
  });
});

describe('query-migrate and the CPU throttle (populate_ram_info())', () => {
  const throttle = (pct: number) => ({
    cpu_throttle_active: () => pct !== 0,
    cpu_throttle_get_percentage: () => pct,
    cpu_throttle_set: () => {},
    cpu_throttle_stop: () => {},
  });
  const info = (state: MigrationState['state'], pct: number) =>
    qmp_query_migrate(source(state, { total: 1 << 20, remaining: 4096 }), new MigrationIncomingState(undefined), () => 0, throttle(pct));

  it('adds cpu-throttle-percentage while the throttle is active, after setup-time in MigrationInfo order', () => {
    const i = info('active', 45);
    expect(i['cpu-throttle-percentage']).toBe(45);
    const keys = Object.keys(i);
    expect(keys.indexOf('cpu-throttle-percentage')).toBe(keys.indexOf('setup-time') + 1);
    expect(info('pre-switchover', 95)['cpu-throttle-percentage']).toBe(95);
  });

  it('leaves it out when the throttle is off, and in the states that have no ram member', () => {
    expect(info('active', 0)).not.toHaveProperty('cpu-throttle-percentage');
    expect(info('setup', 20)).not.toHaveProperty('cpu-throttle-percentage');
    expect(info('failed', 20)).not.toHaveProperty('cpu-throttle-percentage');
    const s = source('active', { total: 1, remaining: 1 });
    expect(qmp_query_migrate(s, new MigrationIncomingState(undefined))).not.toHaveProperty('cpu-throttle-percentage');
  });
});

describe('query-migrate on the destination', () => {
  it('listening: status setup and the socket address (10.0 recording; 9.0 has the setup state too)', () => {
    const mis = new MigrationIncomingState('defer');
    mis.state = 'setup';
    mis.socket_address_list = [{ port: '45195', ipv4: true, host: '127.0.0.1', type: 'inet' } as never];
    const s = source('none', { total: 0, remaining: 0 });
    expect(reply(s, mis)).toBe(
      '{"return": {"status": "setup", "socket-address": [{"port": "45195", "ipv4": true, "host": "127.0.0.1", "type": "inet"}]}}',
    );
  });

  it('completed: the status alone', () => {
    const mis = new MigrationIncomingState('defer');
    mis.state = 'completed';
    expect(reply(source('none', { total: 0, remaining: 0 }), mis)).toBe('{"return": {"status": "completed"}}');
  });
});
