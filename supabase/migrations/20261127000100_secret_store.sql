-- Secrets, their versions, projects and grants live in their own schema, which the Data API does
-- not expose and no API role may use: the only way in is through the audited functions in public.

create schema if not exists secret_store;
revoke all on schema secret_store from public;

-- Stand-in for the workflow engine's projects: secrets and permissions are scoped per project.
create table secret_store.projects (
  id uuid primary key default gen_random_uuid(),
  name text not null unique check (char_length(name) between 1 and 200),
  created_at timestamptz not null default now()
);

create type secret_store.permission as enum ('secrets:read', 'secrets:write', 'audit:read');

-- principal is the JWT `sub` of a person or a service account.
create table secret_store.grants (
  project_id uuid not null references secret_store.projects (id) on delete cascade,
  principal text not null check (char_length(principal) between 1 and 255),
  permission secret_store.permission not null,
  granted_at timestamptz not null default now(),
  primary key (project_id, principal, permission)
);

-- A secret keeps its row (and id) after deletion so its audit history stays meaningful; only its
-- versions, which hold the values, are destroyed. A deleted name may be created again as a new secret.
create table secret_store.secrets (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null references secret_store.projects (id),
  name text not null check (name ~ '^[A-Za-z_][A-Za-z0-9_]{0,127}$'),
  description text check (char_length(description) <= 1000),
  current_version integer check (current_version > 0),
  created_at timestamptz not null default now(),
  created_by text not null,
  updated_at timestamptz not null default now(),
  updated_by text not null,
  deleted_at timestamptz,
  deleted_by text,
  check ((deleted_at is null) = (current_version is not null))
);

create unique index secrets_live_name_key
  on secret_store.secrets (project_id, name)
  where deleted_at is null;

-- Values are sealed by the Edge Function (AES-256-GCM); the database only ever sees ciphertext.
create table secret_store.secret_versions (
  secret_id uuid not null references secret_store.secrets (id),
  version integer not null check (version > 0),
  version_id uuid not null unique,
  key_id text not null check (key_id ~ '^[A-Za-z0-9_-]{1,64}$'),
  nonce bytea not null check (octet_length(nonce) = 12),
  ciphertext bytea not null check (octet_length(ciphertext) between 16 and 70000),
  created_at timestamptz not null default now(),
  created_by text not null,
  primary key (secret_id, version)
);

-- Names and projects are identity: renaming would make audit history lie.
create function secret_store.forbid_identity_change() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.name is distinct from old.name or new.project_id is distinct from old.project_id then
    raise exception 'a secret cannot be renamed or moved to another project'
      using errcode = 'check_violation';
  end if;
  return new;
end
$$;

create trigger secrets_identity_is_fixed
  before update on secret_store.secrets
  for each row execute function secret_store.forbid_identity_change();

revoke all on all tables in schema secret_store from public, anon, authenticated, service_role;
revoke all on all functions in schema secret_store from public, anon, authenticated, service_role;
