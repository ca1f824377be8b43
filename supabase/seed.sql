-- Local demo data, applied by `npm start` after the migrations (and usable with `supabase db reset`).
-- Idempotent: re-running changes nothing. Secret values are not seeded here: they are sealed by the
-- secret-proxy with the keyring, so `npm start` creates the demo secrets through its HTTP API.
--
-- Inserting grants writes 'grant' audit rows (trigger grants_are_audited), attributed to the
-- database user: the trail records how the demo permissions came to be.

insert into secret_store.projects (id, name)
values ('00000000-0000-4000-8000-000000000001', 'demo')
on conflict do nothing;

insert into secret_store.grants (project_id, principal, permission)
values
  ('00000000-0000-4000-8000-000000000001', 'runner-1', 'secrets:read'),
  ('00000000-0000-4000-8000-000000000001', 'admin-1', 'secrets:read'),
  ('00000000-0000-4000-8000-000000000001', 'admin-1', 'secrets:write'),
  ('00000000-0000-4000-8000-000000000001', 'admin-1', 'audit:read')
on conflict do nothing;
