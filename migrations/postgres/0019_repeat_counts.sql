-- How often each interchange was repeated, of each kind of repeat
-- (duplicate_received: the same bytes again; duplicate_reference_refused:
-- other bytes under its control reference), with the first and the last.
-- The trail records the first 100 of a kind one by one and then stops, so
-- that a flood of repeats cannot grow it without bound; this row, one per
-- interchange and kind, keeps counting every one, so nothing taken in goes
-- unrecorded. Rows for repeats recorded before this migration are made
-- from the trail. Kept in step with the other backend's migration of the
-- same number.
CREATE TABLE repeat_counts (
    interchange_id  TEXT NOT NULL REFERENCES interchanges(id),
    kind            TEXT NOT NULL,
    count           BIGINT NOT NULL,
    first_at        TEXT NOT NULL,
    last_at         TEXT NOT NULL,
    PRIMARY KEY (interchange_id, kind)
);

INSERT INTO repeat_counts (interchange_id, kind, count, first_at, last_at)
SELECT interchange_id, kind, COUNT(*), MIN(at), MAX(at) FROM events
WHERE declaration_id IS NULL
  AND kind IN ('duplicate_received', 'duplicate_reference_refused')
GROUP BY interchange_id, kind;
