-- The items resource of the demo API.
CREATE TABLE items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    value INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
