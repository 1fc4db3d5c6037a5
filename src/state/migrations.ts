/**
 * The PostgreSQL schema of the shared state, as numbered migrations. Each is applied once, in
 * order, inside one transaction with the others that are pending (PostgreSQL's DDL is
 * transactional: a failed migration leaves the database as it was), and recorded in
 * ceso_schema_migrations. A database whose highest version is above LATEST_VERSION was migrated
 * by a newer ceso: this one refuses it rather than guess. Never edit a migration that has shipped;
 * add the next one. Every table is prefixed ceso_ so the database can be shared with others.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'locks, audit events and idempotency keys',
    sql: `
CREATE TABLE ceso_locks (
  id text PRIMARY KEY,
  host text NOT NULL,
  vm text NOT NULL,
  holder_user text NOT NULL,
  holder_machine text NOT NULL,
  holder_pid integer NOT NULL,
  command text NOT NULL,
  since timestamptz NOT NULL DEFAULT now(),
  renewed_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  UNIQUE (host, vm)
);

CREATE TABLE ceso_audit_events (
  id bigserial PRIMARY KEY,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz NOT NULL,
  actor text NOT NULL,
  actor_machine text NOT NULL,
  target_host text NOT NULL,
  command text NOT NULL,
  mode text NOT NULL,
  via text,
  dry_run boolean NOT NULL,
  outcome text NOT NULL,
  error_code text,
  vm_id text,
  vm text,
  duration_ms integer NOT NULL,
  idempotency_key text,
  arguments jsonb NOT NULL
);
CREATE INDEX ceso_audit_events_started_at ON ceso_audit_events (started_at);

CREATE FUNCTION ceso_audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ceso_audit_events is append-only';
END
$$;
CREATE TRIGGER ceso_audit_events_no_change BEFORE UPDATE OR DELETE ON ceso_audit_events
  FOR EACH ROW EXECUTE FUNCTION ceso_audit_events_append_only();
CREATE TRIGGER ceso_audit_events_no_truncate BEFORE TRUNCATE ON ceso_audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION ceso_audit_events_append_only();

CREATE TABLE ceso_idempotency_keys (
  key text PRIMARY KEY,
  op text NOT NULL,
  request_hash text NOT NULL,
  status text NOT NULL CHECK (status IN ('running', 'succeeded')),
  result jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX ceso_idempotency_keys_expires_at ON ceso_idempotency_keys (expires_at);
`,
  },
  {
    version: 2,
    name: 'warm pool leases',
    // One row per pool VM (host + managed object id): the current lease, if any, and its epoch.
    // A hand-out claims a row FOR UPDATE SKIP LOCKED; every take-back is conditional on lease_id.
    sql: `
CREATE TABLE ceso_pool_leases (
  host text NOT NULL,
  vm_id text NOT NULL,
  pool text NOT NULL,
  vm text NOT NULL,
  lease_id text,
  lease_epoch bigint NOT NULL DEFAULT 0,
  holder text,
  leased_at timestamptz,
  expires_at timestamptz,
  PRIMARY KEY (host, vm_id)
);
CREATE INDEX ceso_pool_leases_pool ON ceso_pool_leases (host, pool);
`,
  },
];

export const LATEST_VERSION = Math.max(...MIGRATIONS.map((migration) => migration.version));
