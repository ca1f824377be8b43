-- "From where?": the ip filter (an address or a CIDR range) within a project. Btree on inet serves
-- `ip_address <<= range` as a range scan, so an address that occurs a handful of times in a
-- million-row project is found without scanning the project newest-first. Costs one more index
-- entry per audit insert (the hot path); rows without an address are left out.
create index audit_logs_project_ip_time_idx
  on public.audit_logs (project_id, ip_address, "timestamp" desc, id desc)
  where ip_address is not null;
