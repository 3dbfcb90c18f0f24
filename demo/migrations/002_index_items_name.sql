-- Lookups by name; also shows that migrations apply in order.
CREATE INDEX items_name ON items (name);
