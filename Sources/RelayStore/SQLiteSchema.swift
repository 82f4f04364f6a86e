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
                    """)
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
                    """)
        }
        return migrator
    }
}
