-- Cargo tracking: the references (LRN, bill of lading, container, voyage,
-- transport document) each stored declaration, manifest or passenger list
-- carries, for GET /v1/cargo/{ref}. Written with the declaration in one
-- transaction. Kept in step with migrations/sqlite/0004_cargo_refs.sql.
CREATE TABLE cargo_refs (
    reference       TEXT NOT NULL,
    declaration_id  TEXT NOT NULL REFERENCES declarations(id),
    kind            TEXT NOT NULL,
    PRIMARY KEY (reference, declaration_id, kind)
);
CREATE INDEX cargo_refs_by_reference ON cargo_refs (reference);
