DROP TABLE mediation_entry_history;
DROP TABLE mediation_entries;
DROP TABLE mediation_logs;
