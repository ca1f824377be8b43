-- The audit trail: one row per access attempt, append-only, partitioned by month so that old months
-- can be archived and dropped whole. Rows carry no foreign keys: they must outlive what they describe.

create type public.audit_access_type as enum ('read', 'write');
create type public.audit_action as enum (
  'read', 'batch_read', 'list', 'create', 'update', 'delete', 'grant', 'revoke'
);
create type public.audit_outcome as enum ('granted', 'denied', 'not_found', 'error');
create type public.audit_actor_type as enum ('user', 'service', 'system');

create sequence public.audit_logs_id_seq as bigint;

create table public.audit_logs (
  id bigint not null default nextval('public.audit_logs_id_seq'),
  "timestamp" timestamptz not null default now(),
  project_id uuid not null,
  secret_id uuid,
  secret_name text check (char_length(secret_name) <= 128),
  secret_version integer,
  access_type public.audit_access_type not null,
  action public.audit_action not null,
  outcome public.audit_outcome not null,
  user_identity text not null check (char_length(user_identity) <= 255),
  actor_type public.audit_actor_type not null,
  ip_address inet,
  forwarded_for text check (char_length(forwarded_for) <= 1024),
  user_agent text check (char_length(user_agent) <= 512),
  request_id text check (char_length(request_id) <= 128),
  details jsonb,
  primary key (id, "timestamp")
) partition by range ("timestamp");

alter sequence public.audit_logs_id_seq owned by public.audit_logs.id;

-- Newest-first keyset reads per project, per secret and per identity ("who touched this secret?").
create index audit_logs_project_time_idx on public.audit_logs (project_id, "timestamp" desc, id desc);
create index audit_logs_secret_time_idx on public.audit_logs (secret_id, "timestamp" desc, id desc);
create index audit_logs_identity_time_idx on public.audit_logs (project_id, user_identity, "timestamp" desc, id desc);

-- Partitions live in a schema no API role can use, so they are unreachable except through the
-- parent (and its RLS). Supabase's default grants on public would otherwise make each one writable.
create schema if not exists audit_partitions;
revoke all on schema audit_partitions from public;

-- Append-only. Privileges already keep API roles out; this also stops the table owner and any
-- function from rewriting history by accident. Partition upkeep (moving rows out of the default
-- partition) is the one sanctioned exception and flags itself for its own transaction.
create function secret_store.refuse_audit_change() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'DELETE' and current_setting('secret_store.partition_upkeep', true) = 'on' then
    return old;
  end if;
  raise exception 'audit_logs is append-only: % is not allowed', tg_op
    using errcode = 'insufficient_privilege';
end
$$;

create trigger audit_logs_append_only
  before update or delete on public.audit_logs
  for each row execute function secret_store.refuse_audit_change();

create trigger audit_logs_no_truncate
  before truncate on public.audit_logs
  for each statement execute function secret_store.refuse_audit_change();

-- Rows for a month nobody prepared land here instead of failing the access they record.
create table audit_partitions.audit_logs_default partition of public.audit_logs default;
create trigger audit_logs_no_truncate
  before truncate on audit_partitions.audit_logs_default
  for each statement execute function secret_store.refuse_audit_change();

-- Creates the monthly partition holding p_month (idempotent). If rows for that month already sit in
-- the default partition, they move into the new partition in the same transaction.
create function secret_store.create_audit_partition(p_month date) returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  month_start timestamptz := date_trunc('month', p_month::timestamp) at time zone 'UTC';
  month_end timestamptz := (date_trunc('month', p_month::timestamp) + interval '1 month') at time zone 'UTC';
  partition_name text := format('audit_logs_p%s', to_char(p_month, 'YYYY_MM'));
  stranded bigint;
begin
  if to_regclass(format('audit_partitions.%I', partition_name)) is not null then
    return partition_name;
  end if;

  select count(*) into stranded
  from audit_partitions.audit_logs_default
  where "timestamp" >= month_start and "timestamp" < month_end;

  if stranded = 0 then
    execute format(
      'create table audit_partitions.%I partition of public.audit_logs for values from (%L) to (%L)',
      partition_name, month_start, month_end);
  else
    execute format('create table audit_partitions.%I (like public.audit_logs including defaults including constraints)',
      partition_name);
    perform set_config('secret_store.partition_upkeep', 'on', true);
    execute format(
      'with moved as (delete from audit_partitions.audit_logs_default where "timestamp" >= %L and "timestamp" < %L returning *)
       insert into audit_partitions.%I select * from moved',
      month_start, month_end, partition_name);
    perform set_config('secret_store.partition_upkeep', 'off', true);
    execute format('alter table public.audit_logs attach partition audit_partitions.%I for values from (%L) to (%L)',
      partition_name, month_start, month_end);
  end if;

  execute format(
    'create trigger audit_logs_no_truncate before truncate on audit_partitions.%I
       for each statement execute function secret_store.refuse_audit_change()',
    partition_name);
  execute format('revoke all on audit_partitions.%I from public, anon, authenticated, service_role', partition_name);
  return partition_name;
end
$$;

-- Partitions from this month to p_months_ahead months ahead; run by the upkeep job.
create function secret_store.ensure_audit_partitions(p_months_ahead integer default 3) returns setof text
language sql
security definer
set search_path = ''
as $$
  select secret_store.create_audit_partition((date_trunc('month', now() at time zone 'UTC') + make_interval(months => m))::date)
  from generate_series(0, greatest(p_months_ahead, 0)) as m
$$;

select secret_store.ensure_audit_partitions(3);

-- Who may read which project's trail: the RLS helper, reused by every policy and function that
-- scopes audit reads. Reads the verified JWT subject PostgREST (or our direct client) set.
create function secret_store.caller_project_ids(p_permission secret_store.permission) returns setof uuid
language sql
stable
security definer
set search_path = ''
as $$
  select g.project_id
  from secret_store.grants g
  where g.principal = (select auth.jwt() ->> 'sub')
    and g.permission = p_permission
$$;

-- Wake-ups for live readers (audit-logs' stream), anywhere LISTEN works: a small NOTIFY naming the
-- project; listeners read the rows themselves (as the caller, through RLS).
--
-- A NOTIFY takes a database-wide lock from its commit to the end of the commit (WAL flush
-- included), so every notifying transaction commits one at a time: on the hot path that halved
-- audited reads per second at 16 clients. Entries are therefore announced only for projects that
-- somebody is streaming right now: each audit-logs instance holds a short, renewed lease per
-- project it streams. Everything else pays one index probe of a tiny table.
create table secret_store.audit_stream_watchers (
  project_id uuid not null,
  watcher_id uuid not null,
  expires_at timestamptz not null,
  primary key (project_id, watcher_id)
);

-- The projects one function instance streams now (an empty list ends its watch); expired leases
-- of instances that died are cleared on the way.
create function secret_store.renew_audit_stream_watch(
  p_watcher_id uuid,
  p_project_ids uuid[],
  p_lease_seconds integer
) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  delete from secret_store.audit_stream_watchers
    where (watcher_id = p_watcher_id and project_id <> all (p_project_ids))
       or expires_at < now();
  insert into secret_store.audit_stream_watchers (project_id, watcher_id, expires_at)
    select distinct p, p_watcher_id, now() + make_interval(secs => p_lease_seconds)
    from unnest(p_project_ids) as p
    on conflict (project_id, watcher_id) do update set expires_at = excluded.expires_at;
end
$$;

-- Wakes the streams of a project that just got entries, if any are watching. Called by the
-- writers of audit rows (record_accesses, the grant trigger) once per statement rather than from
-- a row trigger, which alone cost about as much as the insert it followed.
create function secret_store.announce_audit_entries(p_project_id uuid) returns void
language plpgsql
set search_path = ''
as $$
begin
  if exists (
    select 1 from secret_store.audit_stream_watchers w
    where w.project_id = p_project_id and w.expires_at > now()
  ) then
    perform pg_notify('audit_logs', json_build_object('project_id', p_project_id)::text);
  end if;
end
$$;

alter table public.audit_logs enable row level security;

create policy audit_logs_visible_to_audit_readers
  on public.audit_logs
  for select
  to authenticated
  using (project_id in (select secret_store.caller_project_ids('audit:read')));

revoke all on public.audit_logs from public, anon, authenticated, service_role;
revoke all on all tables in schema audit_partitions from public, anon, authenticated, service_role;
revoke all on sequence public.audit_logs_id_seq from public, anon, authenticated, service_role;
grant select on public.audit_logs to authenticated;

revoke all on secret_store.audit_stream_watchers from public, anon, authenticated, service_role;
revoke all on all functions in schema secret_store from public, anon, authenticated, service_role;
grant usage on schema secret_store to authenticated;
grant execute on function secret_store.caller_project_ids(secret_store.permission) to authenticated;
