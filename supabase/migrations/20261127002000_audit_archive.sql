-- Archival of old audit partitions: the catalogue of archives (what was written where, with which
-- checksums), the progress a bounded call leaves for the next one, and the one sanctioned way to
-- remove audit rows: dropping a whole partition whose archive is uploaded, verified and catalogued.
--
-- The audit-archive function drives the steps; the rules that make them safe live here:
--   - a partition is worked on by one run at a time: a lease (owner + expiry) on its catalogue row,
--     taken with claim_audit_archive() and checked ("fenced") on every catalogue write;
--   - chunk checksums are recorded before the upload, so a rerun after a crash can tell its own
--     object from anything else at that path;
--   - drop_archived_audit_partition() drops only a verified archive's partition, and only if the
--     partition still holds exactly the catalogued rows.

create type secret_store.audit_archive_state as enum ('exporting', 'exported', 'verified', 'dropped');

create table secret_store.audit_archives (
  partition_name text primary key check (partition_name ~ '^audit_logs_p[0-9]{4}_[0-9]{2}$'),
  range_start timestamptz not null,
  range_end timestamptz not null check (range_end > range_start),
  archive_id uuid not null unique,
  -- Storage paths are under this prefix; it contains archive_id, so no two archives share a path.
  path_prefix text not null unique,
  format_version integer not null check (format_version > 0),
  chunk_rows integer not null check (chunk_rows > 0),
  state secret_store.audit_archive_state not null default 'exporting',
  -- Resume point: the highest id already recorded in a chunk (null: none yet).
  exported_through_id bigint,
  -- Known once every row is in a recorded chunk (state 'exported' and later).
  row_count bigint check (row_count >= 0),
  first_id bigint,
  last_id bigint,
  manifest_path text,
  manifest_sha256 text check (manifest_sha256 ~ '^[0-9a-f]{64}$'),
  manifest_bytes bigint check (manifest_bytes > 0),
  lease_owner uuid,
  lease_expires_at timestamptz,
  -- The last failure, authored by the function (never a raw upstream message).
  last_error text check (char_length(last_error) <= 500),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  verified_at timestamptz,
  dropped_at timestamptz,
  check ((state in ('exporting')) or row_count is not null),
  check ((state not in ('verified', 'dropped')) or (manifest_sha256 is not null and verified_at is not null)),
  check ((state = 'dropped') = (dropped_at is not null))
);

create table secret_store.audit_archive_chunks (
  partition_name text not null references secret_store.audit_archives (partition_name),
  seq integer not null check (seq > 0),
  path text not null unique,
  first_id bigint not null,
  last_id bigint not null check (last_id >= first_id),
  row_count integer not null check (row_count > 0),
  sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  byte_size bigint not null check (byte_size > 0),
  -- Set once the stored object was read back and matched sha256 and byte_size.
  verified_at timestamptz,
  primary key (partition_name, seq)
);

-- The catalogue is the auditor's index of what left the hot table: once a partition is dropped,
-- its archive's record is frozen, and no catalogue row is ever deleted.
create function secret_store.protect_audit_archive() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'DELETE' then
    raise exception 'the audit archive catalogue keeps every record: % is not allowed', tg_op
      using errcode = 'insufficient_privilege';
  end if;
  if old.state = 'dropped' then
    raise exception 'the archive of % is final', old.partition_name using errcode = 'insufficient_privilege';
  end if;
  return new;
end
$$;

-- Until a chunk is verified only its digest and path may change (a re-export; an occupied path).
create function secret_store.protect_audit_archive_chunk() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'DELETE' then
    raise exception 'the audit archive catalogue keeps every record: % is not allowed', tg_op
      using errcode = 'insufficient_privilege';
  end if;
  if old.verified_at is not null
     or new.partition_name is distinct from old.partition_name
     or new.seq is distinct from old.seq
     or new.first_id is distinct from old.first_id
     or new.last_id is distinct from old.last_id
     or new.row_count is distinct from old.row_count then
    raise exception 'a recorded chunk''s place in the archive is fixed' using errcode = 'insufficient_privilege';
  end if;
  return new;
end
$$;

create trigger audit_archives_are_kept
  before update or delete on secret_store.audit_archives
  for each row execute function secret_store.protect_audit_archive();
create trigger audit_archive_chunks_are_kept
  before update or delete on secret_store.audit_archive_chunks
  for each row execute function secret_store.protect_audit_archive_chunk();
create trigger audit_archives_no_truncate
  before truncate on secret_store.audit_archives
  for each statement execute function secret_store.refuse_audit_change();
create trigger audit_archive_chunks_no_truncate
  before truncate on secret_store.audit_archive_chunks
  for each statement execute function secret_store.refuse_audit_change();

-- Monthly partitions of public.audit_logs with their bounds, read from the catalog (not the name).
create function secret_store.audit_partition_bounds()
returns table (partition_name text, range_start timestamptz, range_end timestamptz)
language sql
stable
security definer
set search_path = ''
set timezone = 'UTC'
set datestyle = 'ISO, YMD'
as $$
  select c.relname::text, b[1]::timestamptz, b[2]::timestamptz
  from pg_catalog.pg_inherits i
  join pg_catalog.pg_class c on c.oid = i.inhrelid
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  cross join lateral pg_catalog.regexp_match(
    pg_catalog.pg_get_expr(c.relpartbound, c.oid),
    '^FOR VALUES FROM \(''([^'']+)''\) TO \(''([^'']+)''\)$') as b
  where i.inhparent = 'public.audit_logs'::regclass
    and n.nspname = 'audit_partitions'
    and c.relname ~ '^audit_logs_p[0-9]{4}_[0-9]{2}$'
$$;

-- Partitions whose whole range ended at least p_retention ago (by the database clock), plus any
-- whose archive is already under way, oldest first: the work list of an archival round.
create function secret_store.audit_partitions_due(p_retention interval)
returns table (partition_name text, range_start timestamptz, range_end timestamptz, archive_state secret_store.audit_archive_state)
language sql
stable
security definer
set search_path = ''
as $$
  select p.partition_name, p.range_start, p.range_end, a.state
  from secret_store.audit_partition_bounds() p
  left join secret_store.audit_archives a on a.partition_name = p.partition_name
  where (p.range_end <= now() - p_retention or a.state in ('exporting', 'exported', 'verified'))
    and a.state is distinct from 'dropped'
  order by (a.state is null), p.range_start
$$;

-- Takes the lease on the first due partition no other live run holds, creating its catalogue row on
-- first sight. Returns no row when there is nothing (free) to do. Two overlapping runs never get the
-- same partition: the conditional update re-checks the lease under the row lock.
create function secret_store.claim_audit_archive(
  p_run uuid,
  p_retention interval,
  p_lease_seconds integer,
  p_format_version integer,
  p_chunk_rows integer
) returns setof secret_store.audit_archives
language plpgsql
security definer
set search_path = ''
as $$
declare
  candidate record;
  new_archive_id uuid;
  claimed secret_store.audit_archives;
begin
  if p_run is null or p_lease_seconds is null or p_lease_seconds < 10 then
    raise exception 'a run id and a lease of at least 10 seconds are required' using errcode = 'invalid_parameter_value';
  end if;
  for candidate in select * from secret_store.audit_partitions_due(p_retention) loop
    if candidate.archive_state is null then
      new_archive_id := gen_random_uuid();
      insert into secret_store.audit_archives (
        partition_name, range_start, range_end, archive_id, path_prefix, format_version, chunk_rows)
      values (
        candidate.partition_name, candidate.range_start, candidate.range_end, new_archive_id,
        format('audit_logs/%s/%s/%s', to_char(candidate.range_start at time zone 'UTC', 'YYYY'),
               candidate.partition_name, new_archive_id),
        p_format_version, p_chunk_rows)
      on conflict (partition_name) do nothing;
    end if;

    update secret_store.audit_archives a
      set lease_owner = p_run,
          lease_expires_at = now() + make_interval(secs => p_lease_seconds),
          updated_at = now()
      where a.partition_name = candidate.partition_name
        and a.state <> 'dropped'
        and (a.lease_owner is null or a.lease_expires_at <= now() or a.lease_owner = p_run)
      returning a.* into claimed;
    if found then
      return next claimed;
      return;
    end if;
  end loop;
end
$$;

-- The one sanctioned removal of audit rows. Whole partition, never row by row; only when:
--   - the caller's run holds the lease on the archive, and the archive is verified (manifest and
--     every chunk read back and matched);
--   - the partition still holds exactly the catalogued rows (count and id range), under a lock that
--     keeps anything from being added while it is compared and dropped.
-- The drop and the catalogue's 'dropped' state commit together.
create function secret_store.drop_archived_audit_partition(p_partition text, p_run uuid) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  archive secret_store.audit_archives;
  unverified integer;
  catalogued_rows bigint;
  actual record;
begin
  select * into archive from secret_store.audit_archives where partition_name = p_partition for update;
  if not found then
    raise exception 'no archive is catalogued for %', p_partition using errcode = 'no_data_found';
  end if;
  if archive.lease_owner is distinct from p_run or archive.lease_expires_at <= now() then
    raise exception 'this run does not hold the lease on %', p_partition using errcode = 'lock_not_available';
  end if;
  if archive.state <> 'verified' then
    raise exception 'the archive of % is not verified (state %)', p_partition, archive.state
      using errcode = 'object_not_in_prerequisite_state';
  end if;
  select count(*) filter (where verified_at is null), coalesce(sum(row_count), 0)
    into unverified, catalogued_rows
    from secret_store.audit_archive_chunks where partition_name = p_partition;
  if unverified > 0 or catalogued_rows <> archive.row_count then
    raise exception 'the archive of % has unverified or missing chunks', p_partition
      using errcode = 'object_not_in_prerequisite_state';
  end if;
  if not exists (select 1 from secret_store.audit_partition_bounds() b
                 where b.partition_name = p_partition
                   and b.range_start = archive.range_start and b.range_end = archive.range_end) then
    raise exception '% is not a partition of audit_logs with the catalogued range', p_partition
      using errcode = 'object_not_in_prerequisite_state';
  end if;

  execute format('lock table audit_partitions.%I in access exclusive mode', p_partition);
  execute format('select count(*) as n, min(id) as first_id, max(id) as last_id from audit_partitions.%I', p_partition)
    into actual;
  if actual.n <> archive.row_count
     or actual.first_id is distinct from archive.first_id
     or actual.last_id is distinct from archive.last_id then
    raise exception 'partition % changed since it was archived (% rows now, % archived)',
      p_partition, actual.n, archive.row_count using errcode = 'object_not_in_prerequisite_state';
  end if;

  perform set_config('secret_store.partition_drop', p_partition, true);
  execute format('drop table audit_partitions.%I', p_partition);
  perform set_config('secret_store.partition_drop', '', true);

  update secret_store.audit_archives
    set state = 'dropped', dropped_at = now(), updated_at = now(), lease_owner = null, lease_expires_at = null,
        last_error = null
    where partition_name = p_partition;
end
$$;

-- Refuses any other drop of an audit partition (or of their schema), even by the owner.
create function secret_store.refuse_audit_partition_drop() returns event_trigger
language plpgsql
set search_path = ''
as $$
declare
  dropped record;
begin
  for dropped in select * from pg_catalog.pg_event_trigger_dropped_objects() loop
    if dropped.schema_name = 'audit_partitions' and dropped.object_type = 'table'
       and dropped.object_name is distinct from nullif(current_setting('secret_store.partition_drop', true), '') then
      raise exception 'audit partitions are removed only by secret_store.drop_archived_audit_partition()'
        using errcode = 'insufficient_privilege';
    end if;
    if dropped.object_type = 'schema' and dropped.object_name = 'audit_partitions' then
      raise exception 'the audit_partitions schema cannot be dropped' using errcode = 'insufficient_privilege';
    end if;
  end loop;
end
$$;

-- Supabase's postgres role may create event triggers; where a role may not, the guard is skipped
-- (privileges still keep API roles away from partitions) and the migration says so.
do $$
begin
  create event trigger audit_partitions_drop_guard on sql_drop
    execute function secret_store.refuse_audit_partition_drop();
exception when insufficient_privilege then
  raise notice 'audit partition drop guard not installed: this role may not create event triggers';
end
$$;

-- Private bucket for archives where Supabase Storage exists (bucket name: the documented default
-- AUDIT_ARCHIVE_BUCKET; create your own private bucket if you configure another name).
do $$
begin
  if to_regclass('storage.buckets') is not null then
    execute $sql$insert into storage.buckets (id, name, public) values ('audit-archive', 'audit-archive', false)
                 on conflict (id) do nothing$sql$;
  end if;
end
$$;

revoke all on secret_store.audit_archives, secret_store.audit_archive_chunks from public, anon, authenticated, service_role;
revoke all on function secret_store.protect_audit_archive() from public, anon, authenticated, service_role;
revoke all on function secret_store.protect_audit_archive_chunk() from public, anon, authenticated, service_role;
revoke all on function secret_store.audit_partition_bounds() from public, anon, authenticated, service_role;
revoke all on function secret_store.audit_partitions_due(interval) from public, anon, authenticated, service_role;
revoke all on function secret_store.claim_audit_archive(uuid, interval, integer, integer, integer) from public, anon, authenticated, service_role;
revoke all on function secret_store.drop_archived_audit_partition(text, uuid) from public, anon, authenticated, service_role;
revoke all on function secret_store.refuse_audit_partition_drop() from public, anon, authenticated, service_role;
