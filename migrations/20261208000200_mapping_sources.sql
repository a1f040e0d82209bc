-- Each field's source, as the conversion page shows it ("OrderId ←
-- deal_[stage]_id", "ItemCategory{i} ← constant …"), depends only on the
-- portal's mappings when the conversion was recorded: the same text for
-- every conversion of a configuration. It was a third of each
-- conversion's `fetched` document (about 400 of 1,700 bytes for a deal),
-- parsed and written once per conversion. It is kept once per portal and
-- distinct text here, and a conversion points at it (`sources_id`).
CREATE TABLE mapping_sources (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    portal_id  bigint NOT NULL REFERENCES portals (portal_id) ON DELETE CASCADE,
    sources    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX mapping_sources_text ON mapping_sources (portal_id, md5(sources::text));

-- No foreign key: a conversion's insert would pay a lookup for it. A
-- conversion whose sources are gone (its portal's account was deleted, and
-- with it the rows below) shows no sources.
ALTER TABLE conversions ADD COLUMN sources_id bigint;

-- The object as fetched with each field's source: what `fetched` held
-- before the sources moved here. NULL stays NULL (a scrubbed conversion).
CREATE FUNCTION fetched_with_sources(fetched jsonb, sources_id bigint) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
        SELECT fetched || coalesce(
            (SELECT jsonb_build_object('sources', m.sources) FROM mapping_sources m WHERE m.id = sources_id),
            '{}')
    $$;
