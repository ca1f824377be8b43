-- The only doors to secrets. Each function checks the caller's grant, touches the secret and writes
-- its audit row in one transaction: if the audit insert fails, nothing is returned and nothing
-- changes. Denied and not-found attempts are recorded as well, and answer the caller identically.
--
-- Helpers are plpgsql rather than SQL functions on purpose: a SQL function with a SET clause is
-- never inlined and is planned again on every call (before PostgreSQL 18), while plpgsql caches
-- its plans per session. On the hot path that is the difference between ~0.1 ms and ~0.02 ms.
--
-- The caller is whoever the verified JWT in request.jwt.claims says (set by PostgREST, or by our
-- direct client inside the same transaction). Request metadata (ip, forwarded_for, user_agent,
-- request_id) is advisory and stored as given.

create function secret_store.access_type_of(p_action public.audit_action) returns public.audit_access_type
language plpgsql
immutable
set search_path = ''
as $$
begin
  -- Writes are the changes; every other action (reads, listings, looks at the trail) reads.
  return case
    when p_action in ('create', 'update', 'delete', 'grant', 'revoke') then 'write'::public.audit_access_type
    else 'read'::public.audit_access_type
  end;
end
$$;

-- JWT subject of the caller; refuses to run without one, since an audit row needs an identity.
create function secret_store.caller_identity() returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  identity text := auth.jwt() ->> 'sub';
begin
  if identity is null or identity = '' then
    raise exception 'no authenticated caller' using errcode = 'insufficient_privilege';
  end if;
  return identity;
end
$$;

create function secret_store.caller_actor_type() returns public.audit_actor_type
language plpgsql
stable
set search_path = ''
as $$
begin
  return case when auth.jwt() -> 'app_metadata' ->> 'actor_type' = 'service'
    then 'service'::public.audit_actor_type
    else 'user'::public.audit_actor_type
  end;
end
$$;

create function secret_store.caller_has_permission(p_project_id uuid, p_permission secret_store.permission)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
begin
  return exists (
    select 1 from secret_store.grants g
    where g.project_id = p_project_id
      and g.principal = auth.jwt() ->> 'sub'
      and g.permission = p_permission
  );
end
$$;

-- The single place audit rows are written from: one row per element of the parallel arrays, in
-- order, in one statement (a batch read of 20 secrets is one insert, not 20).
create function secret_store.record_accesses(
  p_project_id uuid,
  p_action public.audit_action,
  p_request jsonb,
  p_details jsonb,
  p_secret_ids uuid[],
  p_secret_names text[],
  p_secret_versions integer[],
  p_outcomes public.audit_outcome[]
) returns void
language plpgsql
set search_path = ''
as $$
declare
  identity text := secret_store.caller_identity();
  actor public.audit_actor_type := secret_store.caller_actor_type();
begin
  insert into public.audit_logs (
    project_id, secret_id, secret_name, secret_version, access_type, action, outcome,
    user_identity, actor_type, ip_address, forwarded_for, user_agent, request_id, details
  )
  select
    p_project_id, e.secret_id, left(e.secret_name, 128), e.secret_version,
    secret_store.access_type_of(p_action), p_action, e.outcome,
    identity, actor,
    nullif(p_request ->> 'ip', '')::inet,
    left(p_request ->> 'forwarded_for', 1024),
    left(p_request ->> 'user_agent', 512),
    left(p_request ->> 'request_id', 128),
    p_details
  from unnest(p_secret_ids, p_secret_names, p_secret_versions, p_outcomes) with ordinality
    as e(secret_id, secret_name, secret_version, outcome, ord)
  order by e.ord;
  perform secret_store.announce_audit_entries(p_project_id);
end
$$;

-- One access, one row.
create function secret_store.record_access(
  p_project_id uuid,
  p_secret_id uuid,
  p_secret_name text,
  p_secret_version integer,
  p_action public.audit_action,
  p_outcome public.audit_outcome,
  p_request jsonb,
  p_details jsonb default null
) returns void
language plpgsql
set search_path = ''
as $$
begin
  perform secret_store.record_accesses(p_project_id, p_action, p_request, p_details,
    array[p_secret_id], array[p_secret_name], array[p_secret_version], array[p_outcome]);
end
$$;

-- Read one secret's current (or a given) version. Returns ciphertext only; the function decrypts.
create function public.read_secret(
  p_project_id uuid,
  p_name text,
  p_version integer default null,
  p_request jsonb default '{}'
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  allowed boolean := secret_store.caller_has_permission(p_project_id, 'secrets:read');
  found_secret record;
  outcome public.audit_outcome;
begin
  select s.id as secret_id, v.version, v.version_id, v.key_id, v.nonce, v.ciphertext
    into found_secret
  from secret_store.secrets s
  join secret_store.secret_versions v
    on v.secret_id = s.id and v.version = coalesce(p_version, s.current_version)
  where s.project_id = p_project_id and s.name = p_name and s.deleted_at is null;

  outcome := case when not allowed then 'denied' when found_secret.secret_id is null then 'not_found' else 'granted' end;
  perform secret_store.record_access(p_project_id, found_secret.secret_id, p_name, found_secret.version, 'read', outcome, p_request);

  if outcome <> 'granted' then
    return jsonb_build_object('outcome', outcome);
  end if;
  return jsonb_build_object(
    'outcome', outcome,
    'secret_id', found_secret.secret_id,
    'version', found_secret.version,
    'version_id', found_secret.version_id,
    'key_id', found_secret.key_id,
    -- encode() breaks base64 lines every 76 characters (the 12-byte nonce never reaches that).
    'nonce', encode(found_secret.nonce, 'base64'),
    'ciphertext', translate(encode(found_secret.ciphertext, 'base64'), E'\n', '')
  );
end
$$;

-- Read several secrets at once: one audit row per requested name, one transaction for all.
create function public.read_secrets(
  p_project_id uuid,
  p_names text[],
  p_request jsonb default '{}'
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  allowed boolean := secret_store.caller_has_permission(p_project_id, 'secrets:read');
  results jsonb;
  secret_ids uuid[];
  secret_names text[];
  secret_versions integer[];
  outcomes public.audit_outcome[];
begin
  if cardinality(p_names) > 100 then
    raise exception 'at most 100 names per batch' using errcode = 'program_limit_exceeded';
  end if;

  select
    coalesce(jsonb_agg(case when r.outcome = 'granted' then jsonb_build_object(
        'name', r.name, 'outcome', r.outcome, 'secret_id', r.secret_id, 'version', r.version,
        'version_id', r.version_id, 'key_id', r.key_id,
        'nonce', encode(r.nonce, 'base64'), 'ciphertext', translate(encode(r.ciphertext, 'base64'), E'\n', ''))
      else jsonb_build_object('name', r.name, 'outcome', r.outcome) end order by r.ord), '[]'),
    array_agg(r.secret_id order by r.ord),
    array_agg(r.name order by r.ord),
    array_agg(r.version order by r.ord),
    array_agg(r.outcome order by r.ord)
  into results, secret_ids, secret_names, secret_versions, outcomes
  from (
    select q.name, q.ord, s.id as secret_id, v.version, v.version_id, v.key_id, v.nonce, v.ciphertext,
      case when not allowed then 'denied'::public.audit_outcome
           when s.id is null then 'not_found'::public.audit_outcome
           else 'granted'::public.audit_outcome end as outcome
    from (
      select distinct on (name) name, ord
      from unnest(p_names) with ordinality as requested(name, ord)
      order by name, ord
    ) q
    left join secret_store.secrets s
      on s.project_id = p_project_id and s.name = q.name and s.deleted_at is null
    left join secret_store.secret_versions v
      on v.secret_id = s.id and v.version = s.current_version
  ) r;

  perform secret_store.record_accesses(p_project_id, 'batch_read', p_request,
    jsonb_build_object('batch_size', cardinality(p_names)), secret_ids, secret_names, secret_versions, outcomes);

  return jsonb_build_object(
    'outcome', case when allowed then 'granted' else 'denied' end,
    'results', results);
end
$$;

-- Names and metadata of a project's live secrets; never values.
create function public.list_secrets(
  p_project_id uuid,
  p_request jsonb default '{}'
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  allowed boolean := secret_store.caller_has_permission(p_project_id, 'secrets:read');
  listing jsonb := '[]';
begin
  if allowed then
    select coalesce(jsonb_agg(jsonb_build_object(
        'secret_id', s.id, 'name', s.name, 'description', s.description,
        'version', s.current_version, 'created_at', s.created_at, 'created_by', s.created_by,
        'updated_at', s.updated_at, 'updated_by', s.updated_by) order by s.name), '[]')
      into listing
    from secret_store.secrets s
    where s.project_id = p_project_id and s.deleted_at is null;
  end if;

  perform secret_store.record_access(p_project_id, null, null, null, 'list',
    case when allowed then 'granted' else 'denied' end::public.audit_outcome, p_request,
    case when allowed then jsonb_build_object('count', jsonb_array_length(listing)) end);

  if not allowed then
    return jsonb_build_object('outcome', 'denied');
  end if;
  return jsonb_build_object('outcome', 'granted', 'secrets', listing);
end
$$;

-- Create a secret or add a new version (rotation). The value arrives sealed; p_version_id is the
-- id the function bound into the ciphertext's additional data.
create function public.write_secret(
  p_project_id uuid,
  p_name text,
  p_version_id uuid,
  p_key_id text,
  p_nonce text,
  p_ciphertext text,
  p_description text default null,
  p_request jsonb default '{}'
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  caller text := secret_store.caller_identity();
  target secret_store.secrets;
  new_version integer;
  action public.audit_action := 'update';
begin
  if not secret_store.caller_has_permission(p_project_id, 'secrets:write') then
    select * into target from secret_store.secrets
      where project_id = p_project_id and name = p_name and deleted_at is null;
    perform secret_store.record_access(p_project_id, target.id, p_name, null,
      case when target.id is null then 'create' else 'update' end::public.audit_action, 'denied', p_request);
    return jsonb_build_object('outcome', 'denied');
  end if;

  select * into target from secret_store.secrets
    where project_id = p_project_id and name = p_name and deleted_at is null
    for update;

  if target.id is null then
    action := 'create';
    insert into secret_store.secrets (project_id, name, description, current_version, created_by, updated_by)
      values (p_project_id, p_name, p_description, 1, caller, caller)
      on conflict (project_id, name) where deleted_at is null do nothing
      returning * into target;
    if target.id is null then
      -- A concurrent writer created it first: become an update of that secret.
      action := 'update';
      select * into target from secret_store.secrets
        where project_id = p_project_id and name = p_name and deleted_at is null
        for update;
    end if;
  end if;

  new_version := case when action = 'create' then 1 else target.current_version + 1 end;
  if action = 'update' then
    update secret_store.secrets
      set current_version = new_version,
          description = coalesce(p_description, description),
          updated_at = now(),
          updated_by = caller
      where id = target.id;
  end if;

  insert into secret_store.secret_versions (secret_id, version, version_id, key_id, nonce, ciphertext, created_by)
    values (target.id, new_version, p_version_id, p_key_id,
            decode(p_nonce, 'base64'), decode(p_ciphertext, 'base64'), caller);

  perform secret_store.record_access(p_project_id, target.id, p_name, new_version, action, 'granted', p_request);

  return jsonb_build_object('outcome', 'granted', 'action', action, 'secret_id', target.id, 'version', new_version);
end
$$;

-- Delete a secret: its values are destroyed, its identity (and audit history) stays.
create function public.delete_secret(
  p_project_id uuid,
  p_name text,
  p_request jsonb default '{}'
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  allowed boolean := secret_store.caller_has_permission(p_project_id, 'secrets:write');
  target secret_store.secrets;
  outcome public.audit_outcome;
begin
  select * into target from secret_store.secrets
    where project_id = p_project_id and name = p_name and deleted_at is null
    for update;

  outcome := case when not allowed then 'denied' when target.id is null then 'not_found' else 'granted' end;
  if outcome = 'granted' then
    delete from secret_store.secret_versions where secret_id = target.id;
    update secret_store.secrets
      set deleted_at = now(), deleted_by = secret_store.caller_identity(), current_version = null,
          updated_at = now(), updated_by = secret_store.caller_identity()
      where id = target.id;
  end if;

  perform secret_store.record_access(p_project_id, target.id, p_name, target.current_version, 'delete', outcome, p_request);
  return jsonb_build_object('outcome', outcome);
end
$$;

-- Grant changes are audited however they are made (SQL editor, seed, a future admin API): the
-- identity is the JWT subject when there is one, else the database user.
create function secret_store.audit_grant_change() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  changed secret_store.grants := case when tg_op = 'DELETE' then old else new end;
  jwt_subject text := auth.jwt() ->> 'sub';
begin
  insert into public.audit_logs (
    project_id, access_type, action, outcome, user_identity, actor_type, details
  ) values (
    changed.project_id, 'write',
    case when tg_op = 'DELETE' then 'revoke' else 'grant' end::public.audit_action,
    'granted',
    coalesce(jwt_subject, 'db:' || session_user),
    case when jwt_subject is null then 'system'::public.audit_actor_type else secret_store.caller_actor_type() end,
    jsonb_build_object('principal', changed.principal, 'permission', changed.permission)
  );
  perform secret_store.announce_audit_entries(changed.project_id);
  return null;
end
$$;

create trigger grants_are_audited
  after insert or delete on secret_store.grants
  for each row execute function secret_store.audit_grant_change();

revoke all on all functions in schema secret_store from public, anon, authenticated, service_role;
grant execute on function secret_store.caller_project_ids(secret_store.permission) to authenticated;

revoke all on function public.read_secret(uuid, text, integer, jsonb) from public, anon, service_role;
revoke all on function public.read_secrets(uuid, text[], jsonb) from public, anon, service_role;
revoke all on function public.list_secrets(uuid, jsonb) from public, anon, service_role;
revoke all on function public.write_secret(uuid, text, uuid, text, text, text, text, jsonb) from public, anon, service_role;
revoke all on function public.delete_secret(uuid, text, jsonb) from public, anon, service_role;
grant execute on function public.read_secret(uuid, text, integer, jsonb) to authenticated;
grant execute on function public.read_secrets(uuid, text[], jsonb) to authenticated;
grant execute on function public.list_secrets(uuid, jsonb) to authenticated;
grant execute on function public.write_secret(uuid, text, uuid, text, text, text, text, jsonb) to authenticated;
grant execute on function public.delete_secret(uuid, text, jsonb) to authenticated;
