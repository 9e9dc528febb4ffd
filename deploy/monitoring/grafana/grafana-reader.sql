-- A read-only role for Grafana: it may read the Grafana views (migration 0006) and nothing
-- else. Run once as the database owner after the first migration, e.g.
--   psql -v password="'...'" -d bemcom -f grafana-reader.sql
-- and give Grafana DJANGOAPIDB_USER=grafana_reader, DJANGOAPIDB_PASSWORD=<that password>.
CREATE ROLE grafana_reader LOGIN PASSWORD :password;
GRANT CONNECT ON DATABASE :"DBNAME" TO grafana_reader;
GRANT USAGE ON SCHEMA public TO grafana_reader;
GRANT SELECT ON grafana_datapoint, grafana_value, grafana_last_value TO grafana_reader;
-- A view reads its tables with its owner's rights, so the reader needs no grant on them.
ALTER ROLE grafana_reader SET default_transaction_read_only = on;
