-- Users of each connection's workspace (GET /v1/users), so that people
-- values, created_by / last_edited_by and user mentions resolve to names.
-- Numbered 0005: 0002 (data sources) and 0003/0004 are taken by other
-- changes of the same release; the runner applies any missing version.

-- The latest complete listing per connection: PutUsers applies a listing
-- only when it was synced no earlier than this one.
CREATE TABLE user_listings (
    connection_id text        PRIMARY KEY,
    synced_at     timestamptz NOT NULL
);

CREATE TABLE users (
    connection_id text        NOT NULL,
    user_id       uuid        NOT NULL,
    type          text,                 -- person, bot
    name          text,                 -- NULL when Notion gave none
    avatar_url    text,
    email         text,                 -- NULL without the user-email capability, and for bots
    object        jsonb       NOT NULL, -- the user object as Notion returned it
    position      integer     NOT NULL, -- place in the latest listing that held the user
    synced_at     timestamptz NOT NULL,
    removed_at    timestamptz,          -- missing from a later listing: left the workspace
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, user_id)
);

-- page_people: every user a page's people, created_by or last_edited_by
-- property names, with the user's name when the users table knows it (NULL
-- otherwise: the integration cannot list users, or the user is unknown).
-- Values that are not the JSON Notion documents are skipped, not an error.
CREATE VIEW page_people AS
SELECT p.connection_id, p.page_id, prop.key AS property, prop.value ->> 'type' AS property_type,
       person ->> 'id' AS user_id, COALESCE(person ->> 'name', u.name) AS name, u.email, u.type AS user_type
FROM pages p
CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(p.properties) = 'object' THEN p.properties ELSE '{}'::jsonb END)
    AS prop(key, value)
CROSS JOIN LATERAL jsonb_array_elements(CASE
        WHEN prop.value ->> 'type' = 'people' AND jsonb_typeof(prop.value -> 'people') = 'array'
            THEN prop.value -> 'people'
        WHEN prop.value ->> 'type' IN ('created_by', 'last_edited_by')
            AND jsonb_typeof(prop.value -> (prop.value ->> 'type')) = 'object'
            THEN jsonb_build_array(prop.value -> (prop.value ->> 'type'))
        ELSE '[]'::jsonb END) AS person
LEFT JOIN users u ON u.connection_id = p.connection_id AND u.user_id::text = lower(person ->> 'id');
