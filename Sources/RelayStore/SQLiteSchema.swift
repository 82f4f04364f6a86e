import GRDB

/// The SQLite schema, as named migrations that run in order on start. Never edit a migration that has
/// shipped: add the next one (`v2`, …).
///
/// Times are REAL seconds since 1970 (see `ColumnTime`); `interaction.state` is the JSON of the whole
/// `Interaction` and the source of truth, its other columns are copies for queries and operators.
/// Nothing here holds a phone number, an email or a name: external ids are pointers.
enum SQLiteSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE interaction (
                        call_id TEXT PRIMARY KEY NOT NULL,
                        status TEXT NOT NULL,
                        channel TEXT,
                        direction TEXT,
                        started_at REAL,
                        ended_at REAL,
                        wrapped_up_at REAL,
                        queue_id TEXT,
                        agent_id TEXT,
                        wrap_up_code TEXT,
                        disconnect_type TEXT,
                        external_id TEXT,
                        next_due_at REAL,
                        first_seen_at REAL NOT NULL,
                        updated_at REAL NOT NULL,
                        state BLOB NOT NULL
                    ) STRICT;
                    -- Only interactions with a timer set are in the index: completed ones drop out of it.
                    CREATE INDEX interaction_next_due_at ON interaction(next_due_at) WHERE next_due_at IS NOT NULL;

                    CREATE TABLE processed_event (
                        event_id TEXT PRIMARY KEY NOT NULL,
                        call_id TEXT NOT NULL,
                        processed_at REAL NOT NULL
                    ) STRICT, WITHOUT ROWID;
                    CREATE INDEX processed_event_processed_at ON processed_event(processed_at);

                    -- AUTOINCREMENT: ids are never reused, even after pruning removed the newest rows, so they
                    -- stay increasing in commit order.
                    CREATE TABLE outbox (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        cause_id TEXT NOT NULL,
                        call_id TEXT NOT NULL,
                        kind TEXT NOT NULL,
                        payload BLOB NOT NULL,
                        created_at REAL NOT NULL,
                        published_at REAL
                    ) STRICT;
                    CREATE INDEX outbox_cause_id ON outbox(cause_id);
                    CREATE INDEX outbox_unpublished ON outbox(id) WHERE published_at IS NULL;
                    """
            )
        }
        migrator.registerMigration("v2") { db in
            // Recent overrides (an agent's validated identity switch), keyed by the caller's keyed phone
            // hash, never by the number.
            try db.execute(
                sql: """
                    CREATE TABLE identity_override (
                        phone_key TEXT PRIMARY KEY NOT NULL,
                        external_id TEXT NOT NULL,
                        call_id TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        expires_at REAL NOT NULL
                    ) STRICT, WITHOUT ROWID;
                    CREATE INDEX identity_override_expires_at ON identity_override(expires_at);
                    """
            )
        }
        migrator.registerMigration("v3") { db in
            // The identity graph of the single customer view. Personal data (names, attributes, notes,
            // identifier values, merge snapshots) is sealed with `FieldCipher` under a context per column;
            // identifiers are found by their keyed hash (`IdentifierHasher`), never by value. WITHOUT ROWID
            // tables, no secondary index on the path of a new caller, and time-ordered contact ids keep the
            // cost of every new interaction's contact to one B-tree insert per table.
            try db.execute(
                sql: """
                    CREATE TABLE contact (
                        id TEXT PRIMARY KEY NOT NULL,
                        type TEXT NOT NULL,
                        merged_into TEXT,
                        aliases TEXT NOT NULL DEFAULT '[]',
                        name BLOB,
                        name_key TEXT,
                        attributes BLOB,
                        notes BLOB,
                        identifiers BLOB,
                        identifier_keys TEXT NOT NULL DEFAULT '',
                        created_at REAL NOT NULL,
                        updated_at REAL NOT NULL,
                        last_interaction_at REAL,
                        expires_at REAL,
                        expired_at REAL
                    ) STRICT, WITHOUT ROWID;
                    CREATE INDEX contact_expires_at ON contact(expires_at) WHERE expires_at IS NOT NULL;
                    CREATE INDEX contact_name_key ON contact(name_key) WHERE name_key IS NOT NULL;

                    -- One identifier belongs to one contact: the key is the primary key. The values live sealed
                    -- in contact.identifiers; contact.identifier_keys lists a contact's keys, so no second index
                    -- is written on every new caller.
                    CREATE TABLE contact_identifier (
                        key TEXT PRIMARY KEY NOT NULL,
                        contact_id TEXT NOT NULL
                    ) STRICT, WITHOUT ROWID;

                    -- Which contact an interaction landed on: the contact that owned the identifier then, never
                    -- rewritten by a merge, so an unmerge gives each contact back the interactions it had. Keyed
                    -- by contact first: a journey is one range of this table.
                    CREATE TABLE contact_interaction (
                        contact_id TEXT NOT NULL,
                        call_id TEXT NOT NULL,
                        linked_by TEXT NOT NULL,
                        suggestions TEXT,
                        linked_at REAL NOT NULL,
                        PRIMARY KEY (contact_id, call_id)
                    ) STRICT, WITHOUT ROWID;

                    -- A wrap-up's notes, sealed; by call id, since a wrap-up may come before its start.
                    CREATE TABLE interaction_note (
                        call_id TEXT PRIMARY KEY NOT NULL,
                        notes BLOB NOT NULL
                    ) STRICT, WITHOUT ROWID;

                    CREATE TABLE contact_merge (
                        id TEXT PRIMARY KEY NOT NULL,
                        target_id TEXT NOT NULL,
                        absorbed_id TEXT NOT NULL,
                        merged_at REAL NOT NULL,
                        undone_at REAL,
                        snapshot BLOB NOT NULL
                    ) STRICT;
                    CREATE INDEX contact_merge_target_id ON contact_merge(target_id);
                    CREATE INDEX contact_merge_absorbed_id ON contact_merge(absorbed_id);
                    """
            )
        }
        migrator.registerMigration("v4") { db in
            try db.execute(
                sql: """
                    -- A CRM contact found by the customer's name alone: a suggestion for the agent, never a link.
                    -- By call id (an enrichment knows its call, not yet its contact); the name is sealed.
                    CREATE TABLE crm_suggestion (
                        call_id TEXT NOT NULL,
                        external_id TEXT NOT NULL,
                        name BLOB,
                        suggested_at REAL NOT NULL,
                        PRIMARY KEY (call_id, external_id)
                    ) STRICT, WITHOUT ROWID;
                    """
            )
        }
        migrator.registerMigration("v5") { db in
            // The outbox becomes the work queue: an entry is due at a time, counts its attempts, and is
            // finished (delivered, dead-lettered, superseded) rather than published to the broker. What
            // was published before this version was carried by the broker's work queues: finished here.
            try db.execute(
                sql: """
                    ALTER TABLE outbox RENAME COLUMN published_at TO finished_at;
                    ALTER TABLE outbox ADD COLUMN due_at REAL NOT NULL DEFAULT 0;
                    ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE outbox ADD COLUMN last_error TEXT;
                    ALTER TABLE outbox ADD COLUMN outcome TEXT;
                    UPDATE outbox SET due_at = created_at;
                    UPDATE outbox SET outcome = 'published' WHERE finished_at IS NOT NULL;
                    DROP INDEX outbox_unpublished;
                    -- What the dispatcher polls: the unfinished entries, by due time.
                    CREATE INDEX outbox_pending ON outbox(due_at, id) WHERE finished_at IS NULL;
                    """
            )
        }
        migrator.registerMigration("v6") { db in
            // The record of dead letters: what operators query, replay, purge and resolve. The broker's
            // `relay.dead-letters` queue stays the way records reach it; the relay drains it into here.
            try db.execute(
                sql: """
                    CREATE TABLE dead_letter (
                        seq INTEGER PRIMARY KEY,
                        id TEXT NOT NULL UNIQUE,
                        -- record, brokerDeadLettered or unreadable
                        kind TEXT NOT NULL,
                        reason TEXT NOT NULL,
                        call_id TEXT,
                        event_type TEXT,
                        event_id TEXT,
                        attempts INTEGER,
                        first_failure_at REAL,
                        last_failure_at REAL,
                        last_error TEXT NOT NULL,
                        target_method TEXT,
                        target_url TEXT,
                        target_status INTEGER,
                        origin_exchange TEXT,
                        origin_routing_key TEXT,
                        replay_count INTEGER NOT NULL DEFAULT 0,
                        -- utf8, base64 or sealed: a sealed payload stays sealed here
                        payload_encoding TEXT NOT NULL,
                        payload BLOB NOT NULL,
                        -- the message as it arrived (a record's JSON), and its headers as JSON text
                        message BLOB NOT NULL,
                        headers TEXT NOT NULL DEFAULT '{}',
                        routing_key TEXT NOT NULL DEFAULT '',
                        -- open, replaying, replayed, purged or resolved
                        state TEXT NOT NULL DEFAULT 'open',
                        state_changed_at REAL,
                        note TEXT,
                        recorded_at REAL NOT NULL,
                        -- messages that carried this id (a record published twice is one dead letter)
                        copies INTEGER NOT NULL DEFAULT 1
                    ) STRICT;
                    CREATE INDEX dead_letter_by_state ON dead_letter(state, seq);
                    CREATE INDEX dead_letter_by_reason ON dead_letter(reason, state);
                    CREATE INDEX dead_letter_by_call ON dead_letter(call_id);
                    """
            )
        }
        return migrator
    }
}
