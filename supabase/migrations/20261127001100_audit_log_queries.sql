-- The audit-logs function's doors into the trail. Each one checks audit:read on the project in the
-- database and records the look itself (who looked, with which filters) through
-- secret_store.record_access, in the same transaction that reads. Callers without the permission
-- get the same "denied" whether or not the project has records, and the attempt is recorded.
--
-- Filters arrive as a JSON object built by the function from validated input:
--   { "secret_id": [uuid...], "secret_name": [text...], "from": ts, "to": ts,
--     "user_identity": text, "access_type": [...], "action": [...], "outcome": [...],
--     "ip": [inet/cidr...] }
-- secret_store.audit_filter_clause turns it into one SQL condition (literals quoted by format %L),
-- the single definition of what each filter means: the query, stats, export and stream all use it.

-- One audit entry as the API shows it (PRD field names; id as a string since it is a bigint;
-- timestamps in UTC with microseconds so that they round-trip exactly into a cursor). A view
-- rather than a function per row: a function with `set search_path` is never inlined, and calling
-- one per row capped the export at ~26k rows/s. security_invoker, so RLS on audit_logs applies to
-- whoever selects (the export and the stream read as the caller).
create view secret_store.audit_log_entries with (security_invoker = true) as
  select a.*,
    json_build_object(
      'id', a.id::text,
      'timestamp', to_char(a."timestamp" at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
      'project_id', a.project_id,
      'secret_id', a.secret_id,
      'secret_name', a.secret_name,
      'secret_version', a.secret_version,
      'access_type', a.access_type,
      'action', a.action,
      'outcome', a.outcome,
      'user_identity', a.user_identity,
      'actor_type', a.actor_type,
      'ip_address', host(a.ip_address),
      'forwarded_for', a.forwarded_for,
      'user_agent', a.user_agent,
      'request_id', a.request_id,
      'details', a.details
    ) as entry
  from public.audit_logs a;

revoke all on secret_store.audit_log_entries from public, anon, authenticated, service_role;
grant select on secret_store.audit_log_entries to authenticated;

-- The same shape for a row in hand (the Realtime broadcast).
create function secret_store.audit_log_json(a public.audit_logs) returns json
language sql
stable
set search_path = ''
as $$
  select e.entry from secret_store.audit_log_entries e where e.id = a.id and e."timestamp" = a."timestamp"
$$;

-- "column = value" for one value (keeps the newest-first index order usable), "= any" for several.
create function secret_store.audit_filter_term(p_column text, p_type text, p_values text[], p_operator text default '=')
returns text
language sql
immutable
set search_path = ''
as $$
  select case
    when cardinality(p_values) = 1 then format('%s %s %L::%s', p_column, p_operator, p_values[1], p_type)
    else format('%s %s any(%L::%s[])', p_column, p_operator, p_values, p_type)
  end
$$;

create function secret_store.audit_filter_clause(p_filters jsonb) returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  clause text := 'true';
  key text;
  vals text[];
begin
  if p_filters is null or jsonb_typeof(p_filters) <> 'object' then
    raise exception 'audit filters must be a json object' using errcode = 'invalid_parameter_value';
  end if;
  for key in select jsonb_object_keys(p_filters) loop
    if key not in ('secret_id', 'secret_name', 'from', 'to', 'user_identity', 'access_type', 'action', 'outcome', 'ip') then
      raise exception 'unknown audit filter' using errcode = 'invalid_parameter_value';
    end if;
    if key in ('from', 'to', 'user_identity') then
      if jsonb_typeof(p_filters -> key) <> 'string' then
        raise exception 'audit filter must be a string' using errcode = 'invalid_parameter_value';
      end if;
      continue;
    end if;
    if jsonb_typeof(p_filters -> key) <> 'array' or jsonb_array_length(p_filters -> key) = 0 then
      raise exception 'audit filter must be a non-empty array' using errcode = 'invalid_parameter_value';
    end if;
    vals := array(select jsonb_array_elements_text(p_filters -> key));
    clause := clause || ' and ' || case key
      when 'secret_id' then secret_store.audit_filter_term('a.secret_id', 'uuid', vals)
      when 'secret_name' then secret_store.audit_filter_term('a.secret_name', 'text', vals)
      when 'access_type' then secret_store.audit_filter_term('a.access_type', 'public.audit_access_type', vals)
      when 'action' then secret_store.audit_filter_term('a.action', 'public.audit_action', vals)
      when 'outcome' then secret_store.audit_filter_term('a.outcome', 'public.audit_outcome', vals)
      when 'ip' then secret_store.audit_filter_term('a.ip_address', 'inet', vals, '<<=')
    end;
  end loop;
  if p_filters ? 'from' then
    clause := clause || format(' and a."timestamp" >= %L::timestamptz', p_filters ->> 'from');
  end if;
  if p_filters ? 'to' then
    clause := clause || format(' and a."timestamp" < %L::timestamptz', p_filters ->> 'to');
  end if;
  if p_filters ? 'user_identity' then
    clause := clause || format(' and a.user_identity = %L', p_filters ->> 'user_identity');
  end if;
  return clause;
end
$$;

-- A page of entries, newest first by (timestamp, id), strictly before p_before ({timestamp, id})
-- when given. Fetches what it is asked for; the function asks for one more than it shows to know
-- whether a next page exists. The look is recorded after the read, so a page never contains the
-- row recording itself.
create function public.query_audit_logs(
  p_project_id uuid,
  p_filters jsonb default '{}',
  p_before jsonb default null,
  p_limit integer default 100,
  p_request jsonb default '{}'
) returns json
language plpgsql
security definer
set search_path = ''
as $$
declare
  allowed boolean := secret_store.caller_has_permission(p_project_id, 'audit:read');
  entries json;
  returned integer;
begin
  if not allowed then
    perform secret_store.record_access(p_project_id, null, null, null, 'audit_query', 'denied', p_request,
      jsonb_build_object('filters', p_filters));
    return json_build_object('outcome', 'denied');
  end if;
  if p_limit is null or p_limit < 1 or p_limit > 1001 then
    raise exception 'limit must be between 1 and 1001' using errcode = 'invalid_parameter_value';
  end if;

  execute format(
    'select coalesce(json_agg(a.entry order by a."timestamp" desc, a.id desc), ''[]''), count(*)
       from (select * from secret_store.audit_log_entries a
              where a.project_id = %L and %s %s
              order by a."timestamp" desc, a.id desc
              limit %s) a',
    p_project_id,
    secret_store.audit_filter_clause(p_filters),
    case when p_before is null then ''
      else format('and (a."timestamp", a.id) < (%L::timestamptz, %L::bigint)', p_before ->> 'timestamp', p_before ->> 'id')
    end,
    p_limit)
    into entries, returned;

  perform secret_store.record_access(p_project_id, null, null, null, 'audit_query', 'granted', p_request,
    jsonb_build_object('filters', p_filters, 'limit', p_limit, 'after_cursor', p_before is not null, 'returned', returned));
  return json_build_object('outcome', 'granted', 'entries', entries);
end
$$;

-- One entry by id, within the project the caller may read.
create function public.get_audit_log(
  p_project_id uuid,
  p_id bigint,
  p_request jsonb default '{}'
) returns json
language plpgsql
security definer
set search_path = ''
as $$
declare
  allowed boolean := secret_store.caller_has_permission(p_project_id, 'audit:read');
  entry json;
begin
  if allowed then
    select a.entry into entry
    from secret_store.audit_log_entries a
    where a.id = p_id and a.project_id = p_project_id;
  end if;
  perform secret_store.record_access(p_project_id, null, null, null, 'audit_get',
    case when not allowed then 'denied' when entry is null then 'not_found' else 'granted' end::public.audit_outcome,
    p_request, jsonb_build_object('id', p_id::text));
  if not allowed then
    return json_build_object('outcome', 'denied');
  end if;
  if entry is null then
    return json_build_object('outcome', 'not_found');
  end if;
  return json_build_object('outcome', 'granted', 'entry', entry);
end
$$;

-- Counts grouped by day (UTC), secret, identity, action or outcome, for the filters given (the
-- function always passes a from/to range). At most p_max_groups groups, the largest first (days
-- in order); `truncated` says when more existed.
create function public.audit_log_stats(
  p_project_id uuid,
  p_filters jsonb,
  p_group_by text,
  p_max_groups integer default 1000,
  p_request jsonb default '{}'
) returns json
language plpgsql
security definer
set search_path = ''
as $$
declare
  allowed boolean := secret_store.caller_has_permission(p_project_id, 'audit:read');
  group_expr text;
  label_expr text := 'null::text';
  order_expr text;
  groups json;
  group_count integer;
  total bigint;
begin
  if not allowed then
    perform secret_store.record_access(p_project_id, null, null, null, 'audit_stats', 'denied', p_request,
      jsonb_build_object('filters', p_filters, 'group_by', p_group_by));
    return json_build_object('outcome', 'denied');
  end if;
  group_expr := case p_group_by
    when 'day' then 'to_char(date_trunc(''day'', a."timestamp" at time zone ''UTC''), ''YYYY-MM-DD'')'
    when 'secret' then 'a.secret_id::text'
    when 'identity' then 'a.user_identity'
    when 'action' then 'a.action::text'
    when 'outcome' then 'a.outcome::text'
  end;
  if group_expr is null then
    raise exception 'unknown stats grouping' using errcode = 'invalid_parameter_value';
  end if;
  if p_group_by = 'secret' then
    label_expr := 'min(a.secret_name)';
  end if;
  order_expr := case when p_group_by = 'day' then 'key' else 'count desc, key' end;

  execute format(
    'with grouped as (
       select %1$s as key, %2$s as label, count(*) as count
       from public.audit_logs a
       where a.project_id = %3$L and %4$s
       group by 1)
     select coalesce((select json_agg(json_build_object(''key'', g.key, ''secret_name'', g.label, ''count'', g.count) order by %5$s)
                        from (select * from grouped order by %5$s limit %6$s) g), ''[]''),
            (select count(*) from grouped),
            (select coalesce(sum(count), 0) from grouped)',
    group_expr, label_expr, p_project_id, secret_store.audit_filter_clause(p_filters), order_expr,
    greatest(1, least(coalesce(p_max_groups, 1000), 10000)))
    into groups, group_count, total;

  perform secret_store.record_access(p_project_id, null, null, null, 'audit_stats', 'granted', p_request,
    jsonb_build_object('filters', p_filters, 'group_by', p_group_by));
  return json_build_object('outcome', 'granted', 'groups', groups, 'total', total,
    'truncated', group_count > greatest(1, least(coalesce(p_max_groups, 1000), 10000)));
end
$$;

-- The gate for reads that stream over a direct connection (export, live stream): checks
-- audit:read and records the look before a single row is read. The rows themselves are then read
-- as the caller (role authenticated, RLS on audit_logs). Returns the id of the recording row so
-- the stream can leave it out.
create function public.authorize_audit_read(
  p_project_id uuid,
  p_purpose public.audit_action,
  p_filters jsonb default '{}',
  p_request jsonb default '{}',
  p_details jsonb default '{}'
) returns json
language plpgsql
security definer
set search_path = ''
as $$
declare
  allowed boolean := secret_store.caller_has_permission(p_project_id, 'audit:read');
begin
  if p_purpose not in ('audit_export', 'audit_stream') then
    raise exception 'authorize_audit_read is for exports and streams' using errcode = 'invalid_parameter_value';
  end if;
  -- Validates the filters before anything is recorded as granted.
  perform secret_store.audit_filter_clause(p_filters);
  perform secret_store.record_access(p_project_id, null, null, null, p_purpose,
    case when allowed then 'granted' else 'denied' end::public.audit_outcome, p_request,
    jsonb_build_object('filters', p_filters) || coalesce(p_details, '{}'));
  if not allowed then
    return json_build_object('outcome', 'denied');
  end if;
  return json_build_object('outcome', 'granted', 'audit_id', currval('public.audit_logs_id_seq')::text);
end
$$;

-- Supabase Realtime: each new entry is broadcast to the private channel audit:<project_id>.
-- Best effort: a failed broadcast must not fail the access the row records (the row is committed
-- either way, and the query API is the source of truth).
create function secret_store.broadcast_audit_log() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  begin
    perform realtime.send(
      jsonb_build_object('entry', secret_store.audit_log_json(new)),
      'audit_log',
      'audit:' || new.project_id::text,
      true);
  exception when others then
    raise warning 'audit realtime broadcast failed: %', sqlstate;
  end;
  return null;
end
$$;

-- Installs the broadcast trigger and the subscription policy where Supabase Realtime exists
-- (its schema is there); a no-op on a plain Postgres. Idempotent; safe to call again after
-- Realtime is enabled.
create function secret_store.enable_audit_realtime() returns boolean
language plpgsql
set search_path = ''
as $$
begin
  if to_regnamespace('realtime') is null then
    return false;
  end if;
  if not exists (select 1 from pg_trigger where tgname = 'audit_logs_broadcast'
                   and tgrelid = 'public.audit_logs'::regclass) then
    create trigger audit_logs_broadcast
      after insert on public.audit_logs
      for each row execute function secret_store.broadcast_audit_log();
  end if;
  if to_regclass('realtime.messages') is not null and not exists (
      select 1 from pg_policies
      where schemaname = 'realtime' and tablename = 'messages' and policyname = 'audit_readers_receive_audit_broadcasts') then
    -- Only holders of audit:read on the project may join audit:<project_id>. The topic is compared
    -- as text, so a malformed topic is simply not matched.
    execute $policy$
      create policy audit_readers_receive_audit_broadcasts
        on realtime.messages
        for select
        to authenticated
        using (
          realtime.messages.extension = 'broadcast'
          and (select realtime.topic()) like 'audit:%'
          and substr((select realtime.topic()), 7) in (
            select p::text from secret_store.caller_project_ids('audit:read') as p)
        )
    $policy$;
  end if;
  return true;
end
$$;

select secret_store.enable_audit_realtime();

revoke all on function secret_store.audit_log_json(public.audit_logs) from public;
revoke all on function secret_store.audit_filter_term(text, text, text[], text) from public;
revoke all on function secret_store.audit_filter_clause(jsonb) from public;
revoke all on function secret_store.broadcast_audit_log() from public;
revoke all on function secret_store.enable_audit_realtime() from public;
revoke all on function secret_store.access_type_of(public.audit_action) from public;
-- Direct-connection readers (export, stream) select as role authenticated and shape rows with it.
grant execute on function secret_store.audit_log_json(public.audit_logs) to authenticated;

revoke all on function public.query_audit_logs(uuid, jsonb, jsonb, integer, jsonb) from public, anon, service_role;
revoke all on function public.get_audit_log(uuid, bigint, jsonb) from public, anon, service_role;
revoke all on function public.audit_log_stats(uuid, jsonb, text, integer, jsonb) from public, anon, service_role;
revoke all on function public.authorize_audit_read(uuid, public.audit_action, jsonb, jsonb, jsonb) from public, anon, service_role;
grant execute on function public.query_audit_logs(uuid, jsonb, jsonb, integer, jsonb) to authenticated;
grant execute on function public.get_audit_log(uuid, bigint, jsonb) to authenticated;
grant execute on function public.audit_log_stats(uuid, jsonb, text, integer, jsonb) to authenticated;
grant execute on function public.authorize_audit_read(uuid, public.audit_action, jsonb, jsonb, jsonb) to authenticated;

-- "From where?": the ip filter (an address or a CIDR range) within a project. Btree on inet serves
-- `ip_address <<= range` as a range scan, so an address that occurs a handful of times in a
-- million-row project is found without scanning the project newest-first. Costs one more index
-- entry per audit insert (the hot path); rows without an address are left out.
create index audit_logs_project_ip_time_idx
  on public.audit_logs (project_id, ip_address, "timestamp" desc, id desc)
  where ip_address is not null;

-- "Who was refused?" is the most common audit question and failures are a few percent of rows, so
-- newest-first scans of the project index would read thousands of rows per page for them. The
-- outcome leads so that one outcome (denied, not_found or error) is one ordered range, even when
-- it has no rows at all. Only failed accesses pay this index entry; granted reads (the hot path)
-- do not.
create index audit_logs_failed_time_idx
  on public.audit_logs (project_id, outcome, "timestamp" desc, id desc)
  where outcome <> 'granted';
