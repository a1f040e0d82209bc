-- HubSpot merges: two (or more) records become one, often under a new id,
-- and the ids merged away keep pointing at it. The pipeline records every
-- `*.merge` event here so that conversions recorded under a merged-away id
-- stay the survivor's: a trigger that already converted under any id of
-- the group does not convert again, adjustments of the survivor find them,
-- and listings show where a conversion's record went.
CREATE TABLE object_merges (
    portal_id   bigint NOT NULL REFERENCES portals ON DELETE CASCADE,
    object_type text NOT NULL CHECK (object_type IN ('contacts', 'companies', 'deals')),
    -- An id that no longer names a record of its own.
    merged_id   bigint NOT NULL,
    -- The record it is part of now (chains are kept flat: a survivor that
    -- is merged again takes its merged ids along).
    survivor_id bigint NOT NULL,
    -- The merge event's occurredAt (epoch milliseconds).
    occurred_at bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (portal_id, object_type, merged_id),
    CHECK (merged_id <> survivor_id)
);
CREATE INDEX object_merges_survivor ON object_merges (portal_id, object_type, survivor_id);

-- What fired a conversion: `creation`, or `<property>=<value>` of the
-- property change. Two ids of one merged record that converted for the
-- same firing and event type are the same conversion.
ALTER TABLE conversions ADD COLUMN fired_by text;
UPDATE conversions c SET fired_by = e.fired_by
FROM (
    SELECT DISTINCT ON (conversion_id) conversion_id,
        CASE WHEN subscription_type LIKE '%.creation' THEN 'creation'
             WHEN property_name <> '' THEN property_name || '=' || coalesce(event->>'propertyValue', '')
        END AS fired_by
    FROM webhook_events WHERE conversion_id IS NOT NULL
    ORDER BY conversion_id, id
) e
WHERE c.id = e.conversion_id;
