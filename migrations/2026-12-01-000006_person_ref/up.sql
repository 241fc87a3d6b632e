-- `jobsync erase person` finds a person's entries by their reference. A
-- reference changes only when it is erased, so updates of an entry stay
-- HOT; each new entry costs one more index insert.
CREATE INDEX mediation_entries_person_ref ON mediation_entries (person_ref);
