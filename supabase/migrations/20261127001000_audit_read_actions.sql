-- Reading the trail leaves a trail: the audit-logs function records every query, lookup, stats
-- call, export and live stream as an audit row of its own. New enum values must commit before any
-- function body may use them, so they get a migration of their own.

alter type public.audit_action add value if not exists 'audit_query';
alter type public.audit_action add value if not exists 'audit_get';
alter type public.audit_action add value if not exists 'audit_stats';
alter type public.audit_action add value if not exists 'audit_export';
alter type public.audit_action add value if not exists 'audit_stream';
