-- Schedules audit-archive with pg_cron + pg_net, following Supabase's "scheduling Edge Functions"
-- pattern: the project URL and the function's key come from Supabase Vault at call time, never from
-- this file. Set them once per project (SQL editor):
--
--   select vault.create_secret('https://<project-ref>.supabase.co', 'project_url');
--   select vault.create_secret('<AUDIT_ARCHIVE_KEY>', 'audit_archive_key');
--
-- The job runs secret_store.request_audit_archive(), which reads Vault and calls net.http_post
-- through dynamic SQL, so registering the job needs only pg_cron: pg_net and Vault are checked when
-- the job runs, with an error that says what is missing (visible in cron.job_run_details).
-- On a Postgres without pg_cron (the local stack, plain CI) this migration only creates the
-- function; the local stack runs the same round on a timer instead.
--
-- Every 10 minutes: each call does bounded work (Supabase Edge Functions: ~2 s CPU, 150 s wall), so
-- a large month takes several calls; a call with nothing to do returns at once.

create function secret_store.request_audit_archive() returns bigint
language plpgsql
set search_path = ''
as $$
declare
  project_url text;
  archive_key text;
  request_id bigint;
begin
  if to_regnamespace('net') is null then
    raise exception 'pg_net is not installed: enable the pg_net extension so pg_cron can call audit-archive'
      using errcode = 'feature_not_supported';
  end if;
  if to_regclass('vault.decrypted_secrets') is null then
    raise exception 'Supabase Vault is not available: audit-archive''s URL and key are read from it'
      using errcode = 'feature_not_supported';
  end if;
  execute 'select decrypted_secret from vault.decrypted_secrets where name = $1 limit 1' into project_url using 'project_url';
  execute 'select decrypted_secret from vault.decrypted_secrets where name = $1 limit 1' into archive_key using 'audit_archive_key';
  if coalesce(project_url, '') = '' or coalesce(archive_key, '') = '' then
    raise exception 'store the secrets project_url and audit_archive_key in Vault (vault.create_secret) to schedule audit-archive'
      using errcode = 'invalid_parameter_value';
  end if;
  execute 'select net.http_post(url := $1, body := $2, headers := $3, timeout_milliseconds := $4)'
    into request_id
    using rtrim(project_url, '/') || '/functions/v1/audit-archive',
          '{}'::jsonb,
          jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer ' || archive_key),
          150000;
  return request_id;
end
$$;

revoke all on function secret_store.request_audit_archive() from public, anon, authenticated, service_role;

do $$
begin
  if exists (select 1 from pg_extension where extname = 'pg_cron') then
    perform cron.schedule('audit-archive', '*/10 * * * *', 'select secret_store.request_audit_archive()');
  else
    raise notice 'pg_cron is not installed: audit-archive is not scheduled here (the local stack runs it on a timer)';
  end if;
end
$$;
