-- What processing each work item counted (accounts, stale plugin results, quarantined), as JSON,
-- so a run's report adds up the work of every instance that took part.
ALTER TABLE work_items ADD COLUMN result TEXT;
