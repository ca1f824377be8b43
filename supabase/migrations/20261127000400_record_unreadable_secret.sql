-- A read that was granted and audited but whose value the function could not decrypt (a keyring
-- missing the version's key, a tampered row) never reached the caller. The trail says so with an
-- 'error' row beside the 'granted' one, written by the function right after. Only a caller who
-- holds secrets:read on the project can add one, and it is attributed to that caller like any row.
create function public.record_unreadable_secret(
  p_project_id uuid,
  p_names text[],
  p_action public.audit_action,
  p_reason text,
  p_request jsonb default '{}'
) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if p_action not in ('read', 'batch_read') then
    raise exception 'only reads can be unreadable' using errcode = 'invalid_parameter_value';
  end if;
  if not secret_store.caller_has_permission(p_project_id, 'secrets:read') then
    return;
  end if;
  perform secret_store.record_accesses(p_project_id, p_action, p_request,
    jsonb_build_object('reason', left(p_reason, 64)),
    array(select s.id from unnest(p_names) with ordinality n(name, ord)
          left join secret_store.secrets s
            on s.project_id = p_project_id and s.name = n.name and s.deleted_at is null
          order by n.ord),
    p_names,
    array(select null::integer from unnest(p_names)),
    array(select 'error'::public.audit_outcome from unnest(p_names)));
end
$$;

revoke all on function public.record_unreadable_secret(uuid, text[], public.audit_action, text, jsonb) from public, anon, service_role;
grant execute on function public.record_unreadable_secret(uuid, text[], public.audit_action, text, jsonb) to authenticated;
